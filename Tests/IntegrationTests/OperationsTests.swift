import Foundation
import Testing

/// What an operator sees: Prometheus metrics, the status page in a real browser, structured
/// request logs and the admin listener, against real upstreams and real pulls.
@Suite(.serialized)
struct OperationsTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// A cold pull counts one miss and one upstream GET per blob, with the blobs' bytes; a warm
    /// pull counts hits and no upstream traffic. No repository name becomes a label value.
    @Test func metricsCountHitsMissesAndUpstreamTraffic() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [200 << 10, 50 << 10])
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/metrics-app")
            try await GatewayProcess.with(.upstreams([upstream.url])) { gateway in
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/metrics-app", reference: "v1")
                let cold = PrometheusText(try await HTTPFetch.get("\(gateway.url)/metrics").text)
                let blobs = Double(fixture.blobDigests.count)
                let blobBytes = Double(fixture.blobDigests.compactMap { fixture.sizes[$0] }.reduce(0, +))
                #expect(cold.sum("mirrorgate_cache_requests_total", ["kind": "blob", "result": "miss"]) == blobs)
                #expect(cold.sum("mirrorgate_cache_requests_total", ["kind": "blob", "result": "hit"]) == 0)
                #expect(cold.sum("mirrorgate_upstream_requests_total", ["upstream": "up1", "kind": "blob", "method": "GET"]) == blobs)
                #expect(cold.sum("mirrorgate_upstream_bytes_total", ["upstream": "up1", "kind": "blob"]) == blobBytes)
                #expect(cold.sum("mirrorgate_upstream_manifest_gets_spent_total", ["upstream": "up1"]) >= 1)
                #expect(cold.sum("mirrorgate_upstream_circuit_state", ["upstream": "up1"]) == 0)
                #expect(cold.sum("mirrorgate_cache_size_bytes") >= blobBytes)

                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/metrics-app", reference: "v1")
                let warm = PrometheusText(try await HTTPFetch.get("\(gateway.url)/metrics").text)
                #expect(warm.sum("mirrorgate_cache_requests_total", ["kind": "blob", "result": "hit"]) == blobs)
                #expect(warm.sum("mirrorgate_upstream_requests_total", ["kind": "blob"]) == blobs, "a warm pull went upstream for a blob")
                #expect(warm.sum("mirrorgate_served_bytes_total", ["kind": "blob", "source": "cache"]) == blobBytes)
                #expect(warm.sum("mirrorgate_http_requests_total", ["route": "blob", "method": "GET", "status": "200"]) == 2 * blobs)
                #expect(warm.sum("mirrorgate_http_request_duration_seconds_count", ["route": "blob"]) == 2 * blobs)
                #expect(!warm.labelValues.contains { $0.contains("metrics-app") }, "a repository name became a label value")

                let status = try JSONSerialization.jsonObject(with: try await HTTPFetch.get("\(gateway.url)/_mirrorgate/status.json").body) as? [String: Any]
                let cache = status?["cache"] as? [String: Any]
                #expect((cache?["blob_hits"] as? Int) == fixture.blobDigests.count)
                #expect((cache?["size_bytes"] as? Int).map(Double.init) == warm.sum("mirrorgate_cache_size_bytes"))
            }
        }
    }

    /// The status page, loaded in headless Chromium: upstreams in order with health, the cache
    /// line, and a failover with its reason (the first upstream refuses connections).
    @Test func statusPageRendersInARealBrowser() async throws {
        let chromium = try #require(
            ManagedProcess.which("chromium") ?? ManagedProcess.which("chromium-browser"),
            "chromium is not installed (make test installs it)")
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [30 << 10])
        let closed = try FreePort.allocate()
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "team/status-app")
            // Nothing in the suite binds 127.0.0.3, so this port stays closed even while other
            // tests pick free ports on 127.0.0.1 in parallel.
            var config = GatewayConfig.upstreams(["http://127.0.0.3:\(closed)", upstream.url])
            config.failureThreshold = 100
            try await GatewayProcess.with(config) { gateway in
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "team/status-app", reference: "v1")
                let scratch = try TemporaryDirectory(prefix: "chromium")
                let flags = [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                    "--user-data-dir=\(scratch.appending("profile").path)",
                ]
                let dom = try await ManagedProcess.run(
                    chromium, arguments: flags + ["--dump-dom", "\(gateway.url)/_mirrorgate/"], timeout: .seconds(90))
                #expect(dom.status == 0, "\(dom.stderr)")
                let text = Self.visibleText(String(decoding: dom.stdout, as: UTF8.self))
                #expect(text.contains("MirrorGate"))
                #expect(text.contains("Registry docker.io"))
                // The registry's table lists its upstreams in order (the ledger's chart above
                // it names only the one that served).
                let registry = try #require(text.range(of: "Registry docker.io"), "\(text)")
                let up1 = try #require(text.range(of: "up1", range: registry.upperBound..<text.endIndex), "\(text)")
                let up2 = try #require(text.range(of: "up2", range: registry.upperBound..<text.endIndex))
                #expect(up1.lowerBound < up2.lowerBound, "upstreams out of order")
                #expect(text.contains("Hit ratio"))
                #expect(text.contains("Recent failovers"))
                #expect(text.contains("team/status-app:v1"), "\(text)")
                #expect(text.contains("connection failed"), "the failover's reason is missing: \(text)")

                let shot = scratch.appending("status.png")
                let screenshot = try await ManagedProcess.run(
                    chromium, arguments: flags + ["--hide-scrollbars", "--window-size=1200,800", "--screenshot=\(shot.path)", "\(gateway.url)/_mirrorgate/"],
                    timeout: .seconds(90))
                #expect(screenshot.status == 0, "\(screenshot.stderr)")
                let png = try Data(contentsOf: shot)
                #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
                #expect(png.count > 10_000)
            }
        }
    }

    /// `log.format: json`: every line is a JSON object; each request has one line with its id,
    /// cache outcome, upstream and bytes; a client's `X-Request-ID` is kept and echoed; the
    /// upstream password appears nowhere.
    @Test func jsonRequestLogsCarryIdsOutcomesAndNoCredentials() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [120 << 10])
        let password = "pa55-\(UUID().uuidString.prefix(8))"
        try await HtpasswdRegistry.with(users: ["puller": password]) { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/logs-app", credentials: .init(user: "puller", password: password))
            var config = GatewayConfig.upstreams([upstream.url])
            config.registries[0].upstreams[0].extra = ["username: puller", "password: \"\(password)\""]
            config.extraYAML = "log: {format: json, level: info}\n"
            try await GatewayProcess.with(config) { gateway in
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/logs-app", reference: "v1")
                let layer = fixture.layers[0]
                let tagged = try await HTTPFetch.get(
                    "\(gateway.url)/v2/library/logs-app/blobs/\(layer.digest)", headers: [("X-Request-ID", "trace-42.a")])
                #expect(tagged.header("X-Request-ID") == "trace-42.a")
                try await Task.sleep(for: .milliseconds(200))

                let log = gateway.logText()
                #expect(!log.contains(password), "the upstream password reached the log")
                var requests: [[String: Any]] = []
                for line in log.split(separator: "\n") where !line.isEmpty {
                    let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                    #expect(object != nil, "not a JSON line: \(line)")
                    if let object, object["msg"] as? String == "request" { requests.append(object) }
                }
                let blobLines = requests.filter { ($0["digest"] == nil) && ($0["reference"] as? String)?.hasPrefix("sha256:") == true && $0["method"] as? String == "GET" }
                #expect(blobLines.count == fixture.blobDigests.count + 1, "\(blobLines)")
                for line in requests {
                    #expect((line["request_id"] as? String)?.isEmpty == false)
                    #expect(line["status"] != nil && line["bytes"] != nil && line["ms"] != nil)
                }
                let misses = blobLines.filter { $0["cache"] as? String == "miss" }
                #expect(misses.count == fixture.blobDigests.count)
                for miss in misses {
                    #expect(miss["served_by"] as? String == "up1", "\(miss)")
                    let digest = miss["reference"] as! String
                    #expect(miss["bytes"] as? String == String(fixture.sizes[digest] ?? -1))
                }
                let traced = try #require(requests.first { $0["request_id"] as? String == "trace-42.a" })
                #expect(traced["cache"] as? String == "hit")
                #expect(traced["bytes"] as? String == String(layer.size))
                #expect(traced["name"] as? String == "library/logs-app")
            }
        }
    }

    /// With `admin_listen`, probes and metrics move there; the main listener no longer has them
    /// and the admin listener has nothing else.
    @Test func adminListenerServesProbesAndMetricsOnly() async throws {
        let adminPort = try FreePort.allocate()
        try await UpstreamRegistry.with { upstream in
            var config = GatewayConfig.upstreams([upstream.url])
            config.extraYAML = "admin_listen: 127.0.0.1:\(adminPort)\n"
            try await GatewayProcess.with(config) { gateway in
                let admin = "http://127.0.0.1:\(adminPort)"
                #expect(try await HTTPFetch.get("\(admin)/healthz").status == 200)
                #expect(try await HTTPFetch.get("\(admin)/readyz").status == 200)
                let metrics = try await HTTPFetch.get("\(admin)/metrics")
                #expect(metrics.status == 200)
                #expect(metrics.text.contains("mirrorgate_cache_max_size_bytes"))
                #expect(try await HTTPFetch.get("\(admin)/v2/").status == 404)
                #expect(try await HTTPFetch.get("\(gateway.url)/metrics").status == 404)
                #expect(try await HTTPFetch.get("\(gateway.url)/healthz").status == 404)
                #expect(try await HTTPFetch.get("\(gateway.url)/v2/").status == 200)
            }
        }
    }

    /// The text a reader sees: tags, styles and scripts removed, entities decoded, whitespace collapsed.
    static func visibleText(_ html: String) -> String {
        var s = html
        for block in ["style", "script", "head"] {
            while let open = s.range(of: "<\(block)"), let close = s.range(of: "</\(block)>", range: open.upperBound..<s.endIndex) {
                s.removeSubrange(open.lowerBound..<close.upperBound)
            }
        }
        s = s.replacingOccurrences(of: "<[^>]+>", with: " ", options: .regularExpression)
        for (entity, char) in [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#39;", "'"), ("&amp;", "&")] {
            s = s.replacingOccurrences(of: entity, with: char)
        }
        return s.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }
}
