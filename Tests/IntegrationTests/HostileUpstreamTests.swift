import Foundation
import Testing

/// Issue 13 findings 6, 8, 9, 10 and 13, each against a hostile upstream (`evil.test`) beside
/// a real `docker-registry` (`docker.io`) on the same gateway.
@Suite(.serialized)
struct HostileUpstreamTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    static let accept = [("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, text/html")]

    /// docker.io → the real registry, evil.test → the hostile upstream.
    static func config(hub: String, hostile: String, extraYAML: String = "") -> GatewayConfig {
        var config = GatewayConfig.upstreams([hub])
        config.setRegistry("evil.test", upstreams: [(name: "hostile", url: hostile)])
        config.healthTimeout = "3s"
        config.failureThreshold = 1000
        config.extraYAML = extraYAML
        return config
    }

    /// Finding 6: a "manifest" served as text/html is refused, not cached, and never served.
    @Test func aManifestThatIsNotAManifestIsNeitherServedNorCached() async throws {
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await HostileUpstream.with { hostile in
                try await GatewayProcess.with(Self.config(hub: hub.url, hostile: hostile.url)) { gateway in
                    let html = try await HTTPFetch.get("\(gateway.url)/v2/evil.test/html/x/manifests/latest", headers: Self.accept)
                    #expect(html.status == 502, "\(html.status) \(html.header("Content-Type") ?? "") \(html.text)")
                    #expect(html.header("Content-Type")?.hasPrefix("text/html") != true)
                    #expect(!html.text.contains("<script>"))
                    #expect(try envelopeCode(html.body) == "MANIFEST_UNKNOWN")
                    #expect(html.text.contains("not a manifest this gateway serves"), "\(html.text)")
                    // Its digest is not served under any name afterwards.
                    let digest = try await Self.htmlDigest(hostile)
                    for path in ["/v2/evil.test/html/x/manifests/\(digest)", "/v2/library/alpine/manifests/\(digest)"] {
                        let again = try await HTTPFetch.get("\(gateway.url)\(path)", headers: Self.accept)
                        #expect(again.status != 200, "\(path): \(again.status)")
                        #expect(!again.text.contains("<script>"))
                    }
                    #expect(CacheInspection(gateway).blobDigests().isEmpty)
                }
            }
        }
    }

    /// The digest the `html` mode serves (its body's sha256).
    static func htmlDigest(_ hostile: HostileUpstream) async throws -> String {
        let answer = try await HTTPFetch.head("\(hostile.url)/v2/html/x/manifests/latest")
        return try #require(answer.header("Docker-Content-Digest"))
    }

    /// Finding 8: a docker.io client never joins, and is never failed by, a fetch of the
    /// same digest stalled through evil.test.
    @Test func aStalledFetchThroughAnotherRegistryDoesNotFailThisOne() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [1 << 20], layerFormat: .random)
        let layer = try #require(fixture.layers.first)
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await skopeo.push(fixture, to: hub.hostPort, repository: "library/debian")
            try await HostileUpstream.with(config: #"{"modes": {"stall": {"length": \#(layer.size), "hold": 30}}}"#) { hostile in
                try await GatewayProcess.with(Self.config(hub: hub.url, hostile: hostile.url)) { gateway in
                    let attacker = Task { try? await HTTPFetch.get("\(gateway.url)/v2/evil.test/stall/x/blobs/\(layer.digest)", timeout: .seconds(20)) }
                    #expect(await eventually(timeout: .seconds(5)) { hostile.upstreamRequests().contains { $0.mode == "stall" && $0.method == "GET" } })
                    let victim = try await HTTPFetch.get("\(gateway.url)/v2/library/debian/blobs/\(layer.digest)", timeout: .seconds(20))
                    #expect(victim.status == 200)
                    #expect(victim.body == fixture.bytes(of: layer.digest), "the docker.io client got \(victim.body.count) bytes")
                    attacker.cancel()
                }
            }
        }
    }

    /// Finding 9: fetches drip-fed by one upstream cannot take every fetch slot, and are given
    /// up once they run below the minimum rate for the grace period.
    @Test func dripFedFetchesDoNotStarveOtherRegistries() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [1 << 20], layerFormat: .random)
        let layer = try #require(fixture.layers.first)
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await skopeo.push(fixture, to: hub.hostPort, repository: "library/app")
            try await HostileUpstream.with(config: #"{"modes": {"drip": {"length": 1048576, "interval": 1.0}}}"#) { hostile in
                let config = Self.config(
                    hub: hub.url, hostile: hostile.url,
                    extraYAML: "limits: {max_concurrent_fetches: 8, min_fetch_rate: 1KiB, fetch_rate_grace: 3s}\n")
                try await GatewayProcess.with(config) { gateway in
                    // More drip-fed fetches than there are slots, each of another digest.
                    let drips = (0..<12).map { index in
                        Task { try? await HTTPFetch.get("\(gateway.url)/v2/evil.test/drip/r\(index)/blobs/sha256:\(String(format: "%064x", index + 1))", timeout: .seconds(30)) }
                    }
                    #expect(await eventually(timeout: .seconds(5)) { hostile.upstreamRequests().filter { $0.mode == "drip" && $0.method == "GET" }.count >= 6 })
                    // A cold docker.io blob gets a slot at once and completes.
                    let cold = try await HTTPFetch.get("\(gateway.url)/v2/library/app/blobs/\(layer.digest)", timeout: .seconds(20))
                    #expect(cold.status == 200)
                    #expect(cold.body == fixture.bytes(of: layer.digest))
                    // The drips are given up for being too slow, not left holding slots.
                    #expect(await eventually(timeout: .seconds(15)) { gateway.logText().contains("below limits.min_fetch_rate") }, "\(gateway.logTail())")
                    for drip in drips { drip.cancel() }
                }
            }
        }
    }

    /// Finding 10: manifest GETs for digests that exist nowhere never spend budget: a free
    /// HEAD first, and a miss is remembered so the same request asks nobody for a while.
    @Test func missesNeverSpendBudget() async throws {
        try await UpstreamRegistry.with(name: "hub") { hub in
            var config = GatewayConfig()
            config.registries = [.init(key: "docker.io", upstreams: [.init(name: "hub", url: hub.url, extra: ["budget: {pulls: 5, window: 6h}"])])]
            try await GatewayProcess.with(config) { gateway in
                for index in 0..<8 {
                    let digest = "sha256:" + String(format: "%064x", 0xdead0000 + index)
                    let answer = try await HTTPFetch.get("\(gateway.url)/v2/library/nothing/manifests/\(digest)", headers: Self.accept)
                    #expect(answer.status == 404, "\(answer.status) \(answer.text)")
                }
                let gets = hub.requests().filter { $0.method == "GET" && $0.path.contains("/manifests/") }
                #expect(gets.isEmpty, "a miss spent a GET: \(gets)")
                #expect(hub.requests().filter { $0.method == "HEAD" && $0.path.contains("/manifests/") }.count == 8)
                // The same miss again within the negative-cache window asks nobody.
                let before = hub.requests().count
                let repeated = try await HTTPFetch.get(
                    "\(gateway.url)/v2/library/nothing/manifests/sha256:\(String(format: "%064x", 0xdead0000))", headers: Self.accept)
                #expect(repeated.status == 404)
                #expect(hub.requests().count == before)
                let status = try JSONSerialization.jsonObject(with: try await HTTPFetch.get("\(gateway.url)/_mirrorgate/upstreams").body) as? [String: Any]
                let budget = ((status?["registries"] as? [[String: Any]])?.first?["upstreams"] as? [[String: Any]])?.first?["budget"] as? [String: Any]
                #expect(budget?["remaining"] as? Int == 5, "\(String(describing: budget))")
            }
        }
    }

    /// Finding 13: a Content-Length of 10^17 or an endless body is that upstream's failure
    /// for that blob; caching stays on for everyone, and nothing piles up in tmp/.
    @Test func anOversizedOrEndlessBlobDoesNotSwitchCachingOff() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [256 << 10])
        let layer = try #require(fixture.layers.first)
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await skopeo.push(fixture, to: hub.hostPort, repository: "library/app")
            try await HostileUpstream.with { hostile in
                var config = Self.config(hub: hub.url, hostile: hostile.url)
                config.maxBlobSize = "8MiB"
                try await GatewayProcess.with(config) { gateway in
                    let huge = try await HTTPFetch.get("\(gateway.url)/v2/evil.test/huge/x/blobs/sha256:\(String(repeating: "a", count: 64))", timeout: .seconds(20))
                    #expect(huge.status == 502, "\(huge.status) \(huge.text)")
                    #expect(huge.text.contains("storage.max_blob_size"), "\(huge.text)")
                    // Chunked, no length: cut off past max_blob_size (the client's body is aborted).
                    let endless = try? await HTTPFetch.get("\(gateway.url)/v2/evil.test/endless/x/blobs/sha256:\(String(repeating: "b", count: 64))", timeout: .seconds(60))
                    #expect(endless == nil || endless?.status != 200)
                    #expect(await eventually(timeout: .seconds(10)) { gateway.logText().contains("body longer than storage.max_blob_size") }, "\(gateway.logTail())")
                    // Caching is still on: readiness says so, and a docker.io blob is cached.
                    let ready = try await HTTPFetch.get("\(gateway.url)/readyz")
                    #expect(ready.text == "ok\n", "\(ready.text)")
                    let blob = try await HTTPFetch.get("\(gateway.url)/v2/library/app/blobs/\(layer.digest)")
                    #expect(blob.body == fixture.bytes(of: layer.digest))
                    let cache = CacheInspection(gateway)
                    #expect(await eventually(timeout: .seconds(5)) { cache.contains(layer.digest) })
                    let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: gateway.storagePath.appending(path: "tmp").path)) ?? []
                    #expect(leftovers.filter { !$0.hasPrefix(".") }.isEmpty, "\(leftovers)")
                }
            }
        }
    }

    /// A blob too large for the cache's free space is passed through: that path reads the
    /// upstream's body under the same stall guard as every other reader, so an upstream that
    /// stops sending does not hold the client (and a connection) until it gives up itself.
    @Test(.enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
    func aStalledPassThroughIsGivenUp() async throws {
        let mountPoint = try TemporaryDirectory(prefix: "passthrough-tmpfs")
        try await CacheTests.mountTmpfs(at: mountPoint.url, options: "size=16m")
        defer { CacheTests.unmount(mountPoint.url) }
        // 64 MiB announced (within max_blob_size, beyond the 16 MiB of free space), then nothing.
        try await HostileUpstream.with(config: #"{"modes": {"stall": {"length": 67108864, "hold": 60}}}"#) { hostile in
            try await UpstreamRegistry.with(name: "hub") { hub in
                var config = Self.config(hub: hub.url, hostile: hostile.url)
                config.healthTimeout = "2s"
                config.storagePath = mountPoint.appending("data", isDirectory: true).path
                try await GatewayProcess.with(config) { gateway in
                    let start = ContinuousClock.now
                    let answer = try? await HTTPFetch.get(
                        "\(gateway.url)/v2/evil.test/stall/x/blobs/sha256:\(String(repeating: "c", count: 64))", timeout: .seconds(40))
                    #expect(answer == nil || answer?.status != 200 || (answer?.body.count ?? 0) < 64 << 20)
                    #expect(ContinuousClock.now - start < .seconds(40), "the pass-through waited for the upstream's 60 s hold")
                    #expect(gateway.logText().contains("do not fit the cache's free space"), "\(gateway.logTail())")
                    #expect(hostile.upstreamRequests().filter { $0.mode == "stall" && $0.method == "GET" }.count >= 2, "no pass-through request was made")
                }
            }
        }
    }
}
