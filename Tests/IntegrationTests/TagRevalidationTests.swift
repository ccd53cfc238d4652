import Foundation
import Testing

/// `tags.refresh_after`: a tag answer younger than it is served with no upstream request; an
/// older one (younger than `tags.ttl`) is served from the cache at once and revalidated in
/// the background, once per tag however many ask. Against Debian's `docker-registry`.
@Suite(.serialized)
struct TagRevalidationTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    static let accept = [
        "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    ].joined(separator: ", ")

    static func config(_ upstream: UpstreamRegistry, refreshAfter: String, ttl: String = "10m") -> GatewayConfig {
        var config = GatewayConfig.upstreams([upstream.url], tagTTL: ttl)
        config.refreshAfter = refreshAfter
        config.extraYAML = "log: {format: logfmt, level: info}\n"
        return config
    }

    /// The digest the gateway answers for `repository:tag` (a GET, as a client's first step).
    static func digest(_ gateway: GatewayProcess, _ repository: String, _ tag: String) async throws -> String? {
        let response = try await HTTPFetch.get("\(gateway.url)/v2/\(repository)/manifests/\(tag)", headers: [("Accept", accept)])
        #expect(response.status == 200, "GET \(repository):\(tag) answered \(response.status)")
        return response.header("Docker-Content-Digest")
    }

    static func manifestRequests(_ upstream: UpstreamRegistry, _ repository: String) -> [RegistryRequest] {
        upstream.requests().filter { $0.isManifest && $0.repository == repository }
    }

    /// Waits until the background revalidation of the only tag in play has ended (the status
    /// says none is in flight and `ended` have), so that request counts are final.
    static func waitForRevalidations(_ gateway: GatewayProcess, ended: Int, timeout: Duration = .seconds(15)) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let response = try await HTTPFetch.get("\(gateway.url)/_mirrorgate/status.json")
            let status = try #require(try JSONSerialization.jsonObject(with: response.body) as? [String: Any])
            let revalidations = try #require(status["tag_revalidations"] as? [String: Any], "no tag_revalidations in status.json")
            let done = (revalidations["succeeded"] as? Int ?? 0) + (revalidations["failed"] as? Int ?? 0)
            if revalidations["in_flight"] as? Int == 0, done >= ended { return revalidations }
            guard ContinuousClock.now < deadline else {
                Issue.record("revalidations did not end: \(revalidations)")
                return revalidations
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test func withinRefreshAfterNothingGoesUpstream() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [4 << 10])
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/fresh")
            try await GatewayProcess.with(Self.config(upstream, refreshAfter: "5m")) { gateway in
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/fresh", reference: "v1")
                try await upstream.waitForRequests(count: fixture.blobDigests.count) { $0.isBlob && $0.method == "GET" }
                upstream.clearRequests()
                for _ in 0..<20 {
                    #expect(try await Self.digest(gateway, "library/fresh", "v1") == fixture.topDigest)
                }
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/fresh", reference: "v1")
                try await Task.sleep(for: .milliseconds(300))
                #expect(upstream.requests().isEmpty, "\(upstream.requests())")
                #expect(!gateway.logText().contains("cache=hit_revalidating"))
            }
        }
    }

    /// The tag moved upstream: the first request past refresh_after still gets the cached
    /// digest (it did not wait for the upstream, which would have said otherwise), and costs
    /// one HEAD and one GET (the new manifest) in the background; the next gets the new digest.
    @Test func aMovedTagIsSeenByTheNextRequestAfterOneHeadAndOneGet() async throws {
        let first = try ImageFixture.make(.ociImage, layerSizes: [4 << 10])
        let second = try ImageFixture.make(.ociImage, layerSizes: [5 << 10])
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(first, to: upstream.hostPort, repository: "library/moving")
            try await GatewayProcess.with(Self.config(upstream, refreshAfter: "1s")) { gateway in
                #expect(try await Self.digest(gateway, "library/moving", "v1") == first.topDigest)
                try await skopeo.push(second, to: upstream.hostPort, repository: "library/moving")
                try await Task.sleep(for: .seconds(1.3))
                upstream.clearRequests()

                #expect(try await Self.digest(gateway, "library/moving", "v1") == first.topDigest)
                let revalidations = try await Self.waitForRevalidations(gateway, ended: 1)
                #expect(revalidations["moved"] as? Int == 1, "\(revalidations)")
                try await upstream.waitForRequests(count: 2) { $0.isManifest }
                #expect(try await Self.digest(gateway, "library/moving", "v1") == second.topDigest)

                let requests = Self.manifestRequests(upstream, "library/moving")
                #expect(requests.count == 2, "\(requests)")
                #expect(requests.filter { $0.method == "HEAD" && $0.reference == "v1" }.count == 1, "\(requests)")
                #expect(requests.filter { $0.method == "GET" && $0.reference == second.topDigest }.count == 1, "\(requests)")
                let log = gateway.logText()
                #expect(log.contains("cache=hit_revalidating"))
                #expect(log.contains("tag moved: revalidated in the background"))

                // The whole image by the new digest, its blobs fetched now.
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/moving", reference: "v1")
                #expect(pulled.allDigests == second.allDigests)
            }
        }
    }

    @Test func fiftyConcurrentRequestsPastRefreshAfterSendOneHead() async throws {
        let fixture = try ImageFixture.make(.ociIndex, layerSizes: [4 << 10])
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/hot")
            try await GatewayProcess.with(Self.config(upstream, refreshAfter: "1s")) { gateway in
                #expect(try await Self.digest(gateway, "library/hot", "v1") == fixture.topDigest)
                try await Task.sleep(for: .seconds(1.3))
                upstream.clearRequests()

                let digests = try await withThrowingTaskGroup(of: String?.self) { group in
                    for _ in 0..<50 { group.addTask { try await Self.digest(gateway, "library/hot", "v1") } }
                    return try await group.reduce(into: [String?]()) { $0.append($1) }
                }
                #expect(digests.count == 50)
                #expect(digests.allSatisfy { $0 == fixture.topDigest })
                _ = try await Self.waitForRevalidations(gateway, ended: 1)
                try await Task.sleep(for: .milliseconds(300))
                let requests = upstream.requests()
                #expect(requests.count == 1, "\(requests)")
                #expect(requests.first?.method == "HEAD")
                #expect(requests.first?.reference == "v1")
            }
        }
    }

    /// The upstream is frozen (SIGSTOP: connections are accepted by the kernel, nothing is
    /// answered) during the background HEAD: requests are answered from the cache while that
    /// HEAD still hangs, the failure is recorded once, and nothing is evicted.
    @Test func anUnansweringUpstreamDuringRevalidationCostsClientsNothing() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [4 << 10, 6 << 10])
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/steady")
            var config = Self.config(upstream, refreshAfter: "1s")
            config.healthInterval = "1h"
            config.healthTimeout = "3s"
            try await GatewayProcess.with(config) { gateway in
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/steady", reference: "v1")
                let objectsBefore = try await Self.cachedObjects(gateway)
                try await Task.sleep(for: .seconds(1.3))

                upstream.kill(signal: SIGSTOP)
                // Ten requests while the background HEAD waits on a frozen upstream (it gives
                // up after health.timeout, 3 s): each is answered from the cache meanwhile.
                for _ in 0..<10 {
                    #expect(try await Self.digest(gateway, "library/steady", "v1") == fixture.topDigest)
                }
                let revalidating = try await Self.status(gateway)
                #expect(revalidating["in_flight"] as? Int == 1, "the HEAD should still hang: \(revalidating)")

                let ended = try await Self.waitForRevalidations(gateway, ended: 1)
                upstream.kill(signal: SIGCONT)
                #expect(ended["failed"] as? Int == 1, "\(ended)")
                #expect((ended["last_failure"] as? [String: Any])?["tag"] as? String == "docker.io/library/steady:v1", "\(ended)")
                #expect(gateway.logText().contains("background tag revalidation failed; the cached answer stays"))
                let page = try await HTTPFetch.get("\(gateway.url)/_mirrorgate/")
                #expect(String(decoding: page.body, as: UTF8.self).contains("1 failed"))

                // Nothing was evicted: same objects, the image still pulls whole.
                #expect(try await Self.cachedObjects(gateway) == objectsBefore)
                #expect(try await Self.digest(gateway, "library/steady", "v1") == fixture.topDigest)
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/steady", reference: "v1")
                #expect(pulled.allDigests == fixture.allDigests)
            }
        }
    }

    static func status(_ gateway: GatewayProcess) async throws -> [String: Any] {
        let response = try await HTTPFetch.get("\(gateway.url)/_mirrorgate/status.json")
        let status = try #require(try JSONSerialization.jsonObject(with: response.body) as? [String: Any])
        return try #require(status["tag_revalidations"] as? [String: Any])
    }

    static func cachedObjects(_ gateway: GatewayProcess) async throws -> Int {
        let response = try await HTTPFetch.get("\(gateway.url)/_mirrorgate/status.json")
        let status = try #require(try JSONSerialization.jsonObject(with: response.body) as? [String: Any])
        let cache = try #require(status["cache"] as? [String: Any])
        return try #require(cache["objects"] as? Int)
    }
}
