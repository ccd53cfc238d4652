import AsyncHTTPClient
import Crypto
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One fetch per blob across replicas, with real processes: `mirrorgate serve` replicas sharing
/// one PostgreSQL (fetch leases) and one cache directory (``ReplicaSet``), in front of a real
/// docker-registry.
///
/// - The same cold blob pulled on both at once reaches the upstream once; the replica that
///   lost the lease streams it from the winner's peer port.
/// - `kill -9` of the fetching replica halfway (the upstream throttled by ``RegistryFront``, so
///   "halfway" is reliable): the client on the survivor still gets the whole, correct blob,
///   after its replica took the fetch over; the upstream is asked once more at most.
/// - The peer port answers 401 without the shared token, and a replica stops cleanly on SIGTERM.
@Suite(.serialized, .enabled(if: PostgresServer.binDirectory != nil, Comment(rawValue: PostgresServer.skipMessage)))
struct ReplicaFetchTests {
    static let MiB = 1 << 20
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// The cache directory the replicas of `set` share.
    static func cache(_ set: ReplicaSet) -> CacheInspection {
        CacheInspection(root: set.storage.appending("data", isDirectory: true))
    }

    static func blobURL(_ gateway: GatewayProcess, _ repository: String, _ digest: String) -> String {
        "\(gateway.url)/v2/\(repository)/blobs/\(digest)"
    }

    static func sha256(_ data: Data) -> String {
        "sha256:" + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    static func blobGETs(_ upstream: UpstreamRegistry, repository: String, digest: String) -> [RegistryRequest] {
        upstream.blobRequests(repository: repository, digest: digest).filter { $0.method == "GET" }
    }

    /// The blob GETs the front has seen (logged when the head is sent; the registry's own
    /// access log has a request only once its body is through the throttled front).
    static func frontGETs(_ front: RegistryFront, repository: String, digest: String) async throws -> [String] {
        try await front.requests().filter { $0.hasPrefix("GET /v2/\(repository)/blobs/\(digest)") }
    }

    /// A one-layer image of `layerSize` random bytes pushed to a real registry as `repository`,
    /// a front that sends its blobs at `bytesPerSecond` (so "halfway" and "at once" are
    /// reliable), and `count` replicas whose upstream is the front; everything is stopped after.
    func withThrottledReplicas(
        layerSize: Int, repository: String, bytesPerSecond: Int, count: Int,
        _ body: (UpstreamRegistry, RegistryFront, ContentDescriptor, ReplicaSet) async throws -> Void
    ) async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [layerSize], layerFormat: .random)
        let layer = try #require(fixture.layers.first)
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: repository)
            let front = try await RegistryFront.start(backend: upstream.url)
            do {
                try await front.setMode(json: #"{"blob_rate": \#(bytesPerSecond)}"#)
                try await ReplicaSet.with(.upstreams([front.url]), count: count) { set in
                    try await body(upstream, front, layer, set)
                }
            } catch {
                await front.stop()
                throw error
            }
            await front.stop()
        }
    }

    // MARK: - One fetch per blob

    /// A 48 MiB cold blob asked of replica A and replica B at the same moment: one upstream
    /// GET; both clients get the blob's bytes.
    @Test func theSameColdBlobOnTwoReplicasReachesTheUpstreamOnce() async throws {
        let repository = "library/shared"
        // Slow enough that both requests are in before the fetch ends.
        try await withThrottledReplicas(layerSize: 48 * Self.MiB, repository: repository, bytesPerSecond: 16777216, count: 2) { upstream, front, layer, set in
            let (a, b) = (set.replicas[0], set.replicas[1])
            upstream.clearRequests()
            async let onA = HTTPFetch.get(Self.blobURL(a, repository, layer.digest), timeout: .seconds(120))
            async let onB = HTTPFetch.get(Self.blobURL(b, repository, layer.digest), timeout: .seconds(120))
            let (ra, rb) = try await (onA, onB)
            #expect(ra.status == 200, "A: \(ra.status) \(ra.text.prefix(300))")
            #expect(rb.status == 200, "B: \(rb.status) \(rb.text.prefix(300))")
            #expect(Self.sha256(ra.body) == layer.digest, "A's bytes do not hash to the digest")
            #expect(Self.sha256(rb.body) == layer.digest, "B's bytes do not hash to the digest")
            try await Task.sleep(for: .milliseconds(500))
            let gets = Self.blobGETs(upstream, repository: repository, digest: layer.digest)
            #expect(gets.count == 1, "upstream blob GETs: \(gets); A's log:\n\(a.logTail(lines: 20))\nB's log:\n\(b.logTail(lines: 20))")
            let cache = Self.cache(set)
            #expect(cache.contains(layer.digest))
            #expect(cache.verifyBlobs() == [])
        }
    }

    /// A GET whose body is hashed as it streams (24 clients holding whole blobs in memory
    /// would measure the test, not the gateway): status, bytes and digest.
    static func streamedGET(_ url: String) async throws -> (status: Int, bytes: Int, digest: String) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(180))
        var hasher = SHA256()
        var bytes = 0
        for try await chunk in response.body {
            hasher.update(data: Data(chunk.readableBytesView))
            bytes += chunk.readableBytes
        }
        return (Int(response.status.code), bytes, "sha256:" + hasher.finalize().map { String(format: "%02x", $0) }.joined())
    }

    /// The closing figure of issue 15: 3 replicas, 24 concurrent cold GETs of one 32 MiB blob
    /// spread across them (8 each). Upstream bytes, in copies of the blob, must be 1.00.
    /// `REPLICA_FIGURE_REPLICAS` and `REPLICA_FIGURE_CLIENTS` change the counts (2–3 replicas).
    @Test func replicasAndConcurrentClientsCostOneCopy() async throws {
        let environment = ProcessInfo.processInfo.environment
        let replicaCount = max(1, min(3, environment["REPLICA_FIGURE_REPLICAS"].flatMap { Int($0) } ?? 3))
        let clientCount = max(1, environment["REPLICA_FIGURE_CLIENTS"].flatMap { Int($0) } ?? 24)
        let repository = "library/fanout"
        try await withThrottledReplicas(layerSize: 32 * Self.MiB, repository: repository, bytesPerSecond: 16777216, count: replicaCount) { upstream, front, layer, set in
            let replicas = set.replicas
            upstream.clearRequests()
            let urls = (0..<clientCount).map { Self.blobURL(replicas[$0 % replicaCount], repository, layer.digest) }
            let results = try await withThrowingTaskGroup(of: (status: Int, bytes: Int, digest: String).self) { group in
                for url in urls { group.addTask { try await Self.streamedGET(url) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.count == clientCount)
            for result in results {
                #expect(result.status == 200 && result.bytes == layer.size && result.digest == layer.digest, "a client got \(result)")
            }
            try await Task.sleep(for: .milliseconds(500))
            let gets = Self.blobGETs(upstream, repository: repository, digest: layer.digest)
            let copies = Double(gets.reduce(0) { $0 + $1.bytes }) / Double(layer.size)
            print("replicas=\(replicaCount) clients=\(clientCount) blob=\(layer.size) upstream_gets=\(gets.count) upstream_copies=\(String(format: "%.2f", copies))")
            #expect(gets.count == 1, "upstream blob GETs: \(gets)")
            #expect(copies == 1.0)
        }
    }

    // MARK: - A replica dies

    /// A 32 MiB blob at 2 MiB/s. A starts fetching it; B's client joins through B, which
    /// follows A's peer stream; A is killed with SIGKILL halfway. B's replica waits out A's
    /// lease, takes the fetch over (continuing with a Range request), and its client gets the
    /// whole, correct blob. Until the kill the upstream saw one GET, afterwards at most two.
    @Test func killingTheFetchingReplicaHalfwayLetsAnotherTakeOver() async throws {
        let repository = "library/takeover"
        try await withThrottledReplicas(layerSize: 32 * Self.MiB, repository: repository, bytesPerSecond: 2097152, count: 2) { upstream, front, layer, set in
            let (a, b) = (set.replicas[0], set.replicas[1])
            upstream.clearRequests()
            let onA = Task { try? await HTTPFetch.get(Self.blobURL(a, repository, layer.digest), timeout: .seconds(120)) }
            let seen = ContinuousClock.now
            while try await Self.frontGETs(front, repository: repository, digest: layer.digest).isEmpty {
                #expect(ContinuousClock.now - seen < .seconds(20), "A never asked the upstream for the blob")
                if ContinuousClock.now - seen > .seconds(20) { return }
                try await Task.sleep(for: .milliseconds(50))
            }
            let onB = Task { try await HTTPFetch.get(Self.blobURL(b, repository, layer.digest), timeout: .seconds(180)) }
            // About 10 of 32 MiB in: B follows A by now.
            try await Task.sleep(for: .seconds(5))
            let before = try await Self.frontGETs(front, repository: repository, digest: layer.digest)
            #expect(before.count == 1, "before the kill both replicas should share one upstream GET: \(before)")
            a.kill(signal: SIGKILL)
            _ = await onA.value
            let rb = try await onB.value
            #expect(rb.status == 200, "B: \(rb.status) \(rb.text.prefix(300))\n\(b.logTail(lines: 30))")
            #expect(rb.body.count == layer.size, "B got \(rb.body.count) of \(layer.size) bytes")
            #expect(Self.sha256(rb.body) == layer.digest, "B's bytes do not hash to the digest")
            let after = try await Self.frontGETs(front, repository: repository, digest: layer.digest)
            #expect(after.count <= 2, "the upstream was asked more than once more: \(after)")
            // The takeover continues at the offset B had followed to: a Range request.
            #expect(after.count < 2 || after[1].hasSuffix(" 206"), "the takeover started over instead of resuming: \(after)")
            #expect(b.logText().contains("taking over a blob fetch from another replica"), "B never took the fetch over:\n\(b.logTail(lines: 30))")
            // Nothing unverified was stored: every blob file hashes to its name.
            let cache = Self.cache(set)
            #expect(cache.contains(layer.digest))
            #expect(cache.verifyBlobs() == [])
        }
    }

    // MARK: - The peer port

    /// Without the shared token (none, or a wrong one) the peer port answers 401 in the OCI
    /// envelope; with it, an unknown digest is a 404.
    @Test func thePeerPortWantsTheToken() async throws {
        try await UpstreamRegistry.with { upstream in
            try await ReplicaSet.with(.upstreams([upstream.url]), count: 1) { set in
                let replica = set.replicas[0]
                // The replica's own configuration says where its peer port is.
                let advertise = try #require(replica.config.extraYAML.split(separator: "\n").first { $0.contains("advertise_url:") })
                let peer = advertise.split(separator: " ").last.map(String.init) ?? ""
                let token = try String(contentsOf: set.storage.appending("peer-token"), encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                let digest = "sha256:" + String(repeating: "ab", count: 32)
                let url = "\(peer)/_mirrorgate/peer/v1/blobs/\(digest)?registry=docker.io"
                let bare = try await HTTPFetch.get(url)
                #expect(bare.status == 401, "\(bare.status) \(bare.text.prefix(200))")
                #expect(bare.text.contains("\"UNAUTHORIZED\""), "\(bare.text)")
                let wrong = try await HTTPFetch.get(url, headers: [("Authorization", "Bearer " + String(repeating: "0", count: token.count))])
                #expect(wrong.status == 401)
                let prefix = try await HTTPFetch.get(url, headers: [("Authorization", "Bearer " + token.dropLast(1))])
                #expect(prefix.status == 401, "a prefix of the token must not pass")
                let right = try await HTTPFetch.get(url, headers: [("Authorization", "Bearer " + token)])
                #expect(right.status == 404, "\(right.status) \(right.text.prefix(200))")

                // SIGTERM stops the replica cleanly, peer listener and peer client included.
                replica.kill(signal: SIGTERM)
                let stopping = ContinuousClock.now
                while replica.exitStatus == nil, ContinuousClock.now - stopping < .seconds(20) {
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(replica.exitStatus == 0, "exit status \(replica.exitStatus.map(String.init) ?? "none"):\n\(replica.logTail(lines: 20))")
            }
        }
    }
}
