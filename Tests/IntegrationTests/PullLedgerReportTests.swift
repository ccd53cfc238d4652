import Foundation
import Testing

/// The pull ledger end to end: real clients pull a known mix of images through a free mirror
/// and a Docker Hub-style upstream that meters pulls (``RegistryFront``'s rate limit, and a
/// configured budget); `mirrorgate report`, `/_mirrorgate/report.json` and the status page
/// then say exactly who pulled what, what it spent and what it saved, also after a restart.
@Suite(.serialized)
struct PullLedgerReportTests {
    /// A report row as the issue defines it, read from JSON.
    struct Row: Equatable, CustomStringConvertible {
        var key: String
        var pulls: Int
        var digests: Int
        var spent: [String: Int]
        var saved: Int
        var hasLastPull: Bool

        init(_ key: String, pulls: Int, digests: Int, spent: [String: Int] = [:], saved: Int, hasLastPull: Bool = true) {
            self.key = key
            self.pulls = pulls
            self.digests = digests
            self.spent = spent
            self.saved = saved
            self.hasLastPull = hasLastPull
        }

        var description: String { "\(key): pulls \(pulls), digests \(digests), spent \(spent), saved \(saved)\(hasLastPull ? "" : ", no last pull")" }
    }

    /// The rows of a report document, checking each holds exactly the issue's fields.
    static func rows(_ data: Data, by: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [Row] {
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], sourceLocation: sourceLocation)
        #expect(json["by"] as? String == by, sourceLocation: sourceLocation)
        let rows = try #require(json["rows"] as? [[String: Any]], sourceLocation: sourceLocation)
        return try rows.map { row in
            #expect(Set(row.keys) == [by, "pulls", "digests", "spent", "saved", "last_pull"], "\(row)", sourceLocation: sourceLocation)
            return Row(
                try #require(row[by] as? String, sourceLocation: sourceLocation),
                pulls: try #require(row["pulls"] as? Int), digests: try #require(row["digests"] as? Int),
                spent: try #require(row["spent"] as? [String: Int]), saved: try #require(row["saved"] as? Int),
                hasLastPull: row["last_pull"] is String)
        }
    }

    /// `mirrorgate report --url URL --json --by BY`.
    static func report(_ gateway: GatewayProcess, by: String, since: String = "1h", sourceLocation: SourceLocation = #_sourceLocation) async throws -> [Row] {
        let result = try await MirrorGateCLI.run(["report", "--url", gateway.url, "--json", "--by", by, "--since", since])
        #expect(result.succeeded, "\(MirrorGateCLI.output(result))", sourceLocation: sourceLocation)
        return try rows(result.stdout, by: by, sourceLocation: sourceLocation)
    }

    static let byRepository = [
        // skopeo twice (the first GET spent a Hub pull, the second came from the cache), and
        // ctr once (its tag HEAD is a check; the GET by digest is the pull).
        Row("docker.io/library/alpine", pulls: 3, digests: 1, spent: ["hub": 1], saved: 2),
        // From the free mirror (skopeo), then from the cache (podman).
        Row("docker.io/library/redis", pulls: 2, digests: 1, saved: 2),
    ]
    static let byClient = [
        Row("127.0.0.1 (skopeo)", pulls: 3, digests: 2, spent: ["hub": 1], saved: 2),
        Row("127.0.0.1 (containerd)", pulls: 1, digests: 1, saved: 1),
        Row("127.0.0.1 (podman/cri-o)", pulls: 1, digests: 1, saved: 1),
    ]
    static let byUpstream = [
        Row("cache", pulls: 3, digests: 2, saved: 3),
        Row("hub", pulls: 1, digests: 1, spent: ["hub": 1], saved: 0),
        Row("mirror", pulls: 1, digests: 1, saved: 1),
    ]

    @Test func reportSaysWhoPulledWhatAndWhatItCost() async throws {
        let skopeo = try Skopeo.locate()
        let alpine = try ImageFixture.make(.dockerImage, layerSizes: [16 << 10])
        let redis = try ImageFixture.make(.dockerImage, layerSizes: [12 << 10])
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await UpstreamRegistry.with(name: "mirror") { mirror in
                try await skopeo.push(alpine, to: hub.hostPort, repository: "library/alpine")
                try await skopeo.push(redis, to: hub.hostPort, repository: "library/redis")
                try await skopeo.push(redis, to: mirror.hostPort, repository: "library/redis")
                let front = try await RegistryFront.start(backend: hub.url)
                do {
                    try await pullAndReport(skopeo: skopeo, alpine: alpine, redis: redis, mirror: mirror, front: front)
                } catch {
                    await front.stop()
                    throw error
                }
                await front.stop()
            }
        }
    }

    /// Pulls with skopeo, ctr and podman, then checks every form of the report (`front` counts
    /// what Hub spent).
    func pullAndReport(skopeo: Skopeo, alpine: ImageFixture, redis: ImageFixture, mirror: UpstreamRegistry, front: RegistryFront) async throws {
        try await front.rateLimit(limit: 100, window: 21600)
        var config = GatewayConfig()
        config.registries = [.init(key: "docker.io", upstreams: [
            .init(name: "mirror", url: mirror.url),
            .init(name: "hub", url: front.url, extra: ["budget: {pulls: 100, window: 6h}"]),
        ], policy: #"{allow: ["library/*"]}"#)]
        try await GatewayProcess.with(config) { gateway in
            _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/alpine", reference: alpine.tag)
            _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/alpine", reference: alpine.tag)
            _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/redis", reference: redis.tag)
            try await ContainerdDaemon.with { daemon in
                let hosts = try daemon.writeHostsDir(registries: [(host: "docker.io", mirrorURL: gateway.url)])
                let fetched = try await daemon.fetch(ref: "docker.io/library/alpine:\(alpine.tag)", hostsDir: hosts)
                #expect(fetched.succeeded, "\(fetched.stderr)")
            }
            try await Podman.with(registriesConf: try PodmanPullTests.shippedRegistriesConf(for: gateway)) { podman in
                let pulled = try await podman.pull("docker.io/library/redis:\(redis.tag)")
                #expect(pulled.succeeded, "\(pulled)")
            }
            // A denial (on the status page, never in the ledger).
            #expect(try await HTTPFetch.get("\(gateway.url)/v2/someone/random/manifests/v1").status == 403)

            #expect(try await Self.report(gateway, by: "repository") == Self.byRepository)
            #expect(try await Self.report(gateway, by: "client") == Self.byClient)
            #expect(try await Self.report(gateway, by: "upstream") == Self.byUpstream)
            // The one Hub pull the ledger says was spent is the one Hub counted.
            #expect(try await front.rateLimitState().used == 1)

            // report.json is the same document; a HEAD is never a pull.
            let document = try await HTTPFetch.get("\(gateway.url)/_mirrorgate/report.json?since=1h&by=client")
            #expect(document.status == 200)
            #expect(try Self.rows(document.body, by: "client") == Self.byClient)
            #expect(try await HTTPFetch.head("\(gateway.url)/v2/library/alpine/manifests/\(alpine.tag)").status == 200)
            #expect(try await Self.report(gateway, by: "repository") == Self.byRepository)
            #expect(try await HTTPFetch.get("\(gateway.url)/_mirrorgate/report.json?by=tag").status == 400)
            #expect(try await HTTPFetch.get("\(gateway.url)/_mirrorgate/report.json?since=forever").status == 400)

            let csv = try await MirrorGateCLI.run(["report", "--url", gateway.url, "--csv"])
            #expect(csv.succeeded, "\(MirrorGateCLI.output(csv))")
            let lines = csv.stdoutText.split(separator: "\r\n").map(String.init)
            #expect(lines.first == "repository,pulls,digests,spent:hub,saved,last_pull")
            #expect(lines.dropFirst().map { $0.split(separator: ",").dropLast().joined(separator: ",") }
                == ["docker.io/library/alpine,3,1,1,2", "docker.io/library/redis,2,1,0,2"])
            let table = try await MirrorGateCLI.run(["report", "--url", gateway.url, "--by", "upstream"])
            #expect(table.succeeded)
            #expect(table.stdoutText.contains("5 pulls, 4 without spending quota, spent: hub 1"), "\(table.stdoutText)")

            try await Self.expectStatusPage(gateway)

            // After a restart the ledger is still there.
            try await gateway.restart()
            #expect(try await Self.report(gateway, by: "repository") == Self.byRepository)
            #expect(try await Self.report(gateway, by: "client", since: "7d") == Self.byClient)
        }
    }

    /// The status page's view of the last 24 hours in headless Chromium: top repositories and
    /// clients, spend against savings per upstream, the policy and its denial; the page's own
    /// policy blocks none of its styles, and it has no scripts.
    static func expectStatusPage(_ gateway: GatewayProcess) async throws {
        let chromium = try #require(
            ManagedProcess.which("chromium") ?? ManagedProcess.which("chromium-browser"), "chromium is not installed (make test installs it)")
        let profile = try TemporaryDirectory(prefix: "chromium-ledger")
        let browser = try await ManagedProcess.run(chromium, arguments: [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
            "--user-data-dir=\(profile.appending("profile").path)", "--enable-logging=stderr", "--v=1",
            "--dump-dom", "\(gateway.url)/_mirrorgate/",
        ], timeout: .seconds(90))
        #expect(browser.status == 0, "\(browser.stderr.suffix(2000))")
        #expect(!browser.stdoutText.contains("<script"))
        let violations = browser.stderr.split(separator: "\n").filter { $0.contains("Content Security Policy") }
        #expect(violations.isEmpty, "\(violations.joined(separator: "\n"))")
        let text = OperationsTests.visibleText(browser.stdoutText)
        for expected in [
            "Pulls, last 24 hours", "5 pulls · 4 served without spending quota · 1 spent (hub 1)",
            "Spend against savings per upstream", "cache 0 spent 3 saved", "hub 1 spent 0 saved", "mirror 0 spent 1 saved",
            "Top repositories", "docker.io/library/alpine 3 1 hub 1 2", "docker.io/library/redis 2 1 — 2",
            "Top clients", "127.0.0.1 (skopeo) 3 2 hub 1 2", "127.0.0.1 (containerd) 1 1 — 1", "127.0.0.1 (podman/cri-o) 1 1 — 1",
            "Repository policy", "docker.io library/* — 1", "Recent denials", "docker.io/someone/random registries.docker.io.policy.allow (no match) 127.0.0.1",
        ] {
            #expect(text.contains(expected), "missing \(expected.debugDescription) in \(text)")
        }
        let top = try #require(text.range(of: "Top repositories"))
        let alpine = try #require(text.range(of: "docker.io/library/alpine 3"))
        let redis = try #require(text.range(of: "docker.io/library/redis 2"))
        #expect(top.upperBound < alpine.lowerBound && alpine.upperBound < redis.lowerBound, "most pulls first")
    }

    /// Eight clients ask for one new tag at once: they share one upstream HEAD and one GET
    /// (the upstream is stopped until all of them are waiting), so the ledger has eight pulls
    /// and one spend, as Hub counted.
    @Test func requestsSharingOneUpstreamGETCountOneSpend() async throws {
        let skopeo = try Skopeo.locate()
        let image = try ImageFixture.make(.ociImage, layerSizes: [4096])
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await skopeo.push(image, to: hub.hostPort, repository: "library/app")
            let front = try await RegistryFront.start(backend: hub.url)
            do {
                try await front.rateLimit(limit: 100, window: 21600)
                var config = GatewayConfig(healthTimeout: "20s")
                config.registries = [.init(key: "docker.io", upstreams: [.init(name: "hub", url: front.url)])]
                try await GatewayProcess.with(config) { gateway in
                    front.process.kill(signal: SIGSTOP)
                    let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                        for _ in 0..<8 {
                            group.addTask {
                                try await HTTPFetch.get(
                                    "\(gateway.url)/v2/library/app/manifests/\(image.tag)", headers: [("Accept", "application/vnd.oci.image.manifest.v1+json")],
                                    timeout: .seconds(60)).status
                            }
                        }
                        try await Task.sleep(for: .seconds(1))
                        front.process.kill(signal: SIGCONT)
                        return try await group.reduce(into: []) { $0.append($1) }
                    }
                    #expect(statuses == Array(repeating: 200, count: 8))
                    #expect(try await front.rateLimitState().used == 1)
                    #expect(try await Self.report(gateway, by: "repository") == [Row("docker.io/library/app", pulls: 8, digests: 1, spent: ["hub": 1], saved: 7)])
                }
            } catch {
                front.process.kill(signal: SIGCONT)
                await front.stop()
                throw error
            }
            await front.stop()
        }
    }

    /// `ledger.retention`: requests older than it go (a retention of seconds, so the test can
    /// wait for it).
    @Test func retentionDropsOldRequests() async throws {
        let skopeo = try Skopeo.locate()
        let image = try ImageFixture.make(.ociImage, layerSizes: [4096])
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await skopeo.push(image, to: hub.hostPort, repository: "library/app")
            var config = GatewayConfig.upstreams([hub.url])
            config.extraYAML = "ledger: {retention: 2s}\n"
            try await GatewayProcess.with(config) { gateway in
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: image.tag)
                #expect(try await Self.report(gateway, by: "repository").map(\.pulls) == [1])
                let deadline = ContinuousClock.now + .seconds(30)
                var rows = try await Self.report(gateway, by: "repository", since: "1d")
                while !rows.isEmpty, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(500))
                    rows = try await Self.report(gateway, by: "repository", since: "1d")
                }
                #expect(rows.isEmpty, "still in the ledger after its retention: \(rows)")
                // New pulls are recorded as before.
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: image.tag)
                #expect(try await Self.report(gateway, by: "repository").map(\.pulls) == [1])
            }
        }
    }

    /// report.json follows the status endpoints' rule: behind inbound auth when auth is on;
    /// with auth off and admin_listen set, only on the admin listener.
    @Test func reportJSONIsServedWhereTheStatusIs() async throws {
        let files = try TemporaryDirectory(prefix: "ledger-auth")
        let htpasswd = files.appending("htpasswd")
        try await HtpasswdFile.write(users: ["alice": "alice-pw"], to: htpasswd)
        let closed = try ClosedPort()
        var config = GatewayConfig.upstreams(["http://127.0.0.1:\(closed.port)"])
        config.extraYAML = "auth: {htpasswd: \"\(htpasswd.path)\"}\n"
        try await GatewayProcess.with(config) { gateway in
            let path = "\(gateway.url)/_mirrorgate/report.json"
            #expect(try await HTTPFetch.get(path).status == 401)
            let alice = ("Authorization", "Basic " + Data("alice:alice-pw".utf8).base64EncodedString())
            let answer = try await HTTPFetch.get(path, headers: [alice])
            #expect(answer.status == 200)
            #expect(try Self.rows(answer.body, by: "repository").isEmpty)
        }
        let adminPort = try FreePort.allocate()
        config.extraYAML = "admin_listen: 127.0.0.1:\(adminPort)\n"
        try await GatewayProcess.with(config) { gateway in
            #expect(try await HTTPFetch.get("\(gateway.url)/_mirrorgate/report.json").status == 404)
            #expect(try await HTTPFetch.get("http://127.0.0.1:\(adminPort)/_mirrorgate/report.json?by=upstream").status == 200)
            let status = try await HTTPFetch.get("http://127.0.0.1:\(adminPort)/_mirrorgate/")
            #expect(status.text.contains("No manifest pulls in the last 24 hours."))
        }
    }
}
