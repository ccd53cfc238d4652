import AsyncHTTPClient
import Foundation
import MirrorGateUpstream
import NIOCore
import NIOHTTP1
import RegistryModel

/// The peer protocol between replicas, and the client a waiting replica streams another's
/// in-flight blob with.
///
/// The cluster code lives in MirrorGateCore (`Cluster/`) rather than a module of its own because
/// it is one more way for ``BlobFetcher`` to fill an ``InFlightBlob``: it needs the fetcher's
/// internals (spools, the blob's writer side), which a separate module could only reach if they
/// were made public. The peer *listener* is in MirrorGateHTTP, beside the other Hummingbird
/// responders; it reads in-flight blobs through their public reader side only.
///
/// `GET /_mirrorgate/peer/v1/blobs/<digest>?registry=<key>` with `Authorization: Bearer <token>`
/// and optionally `Range: bytes=<n>-`: 200 with the bytes from `n`, `MirrorGate-Blob-Size`
/// (the whole blob's size, when known) and a Content-Length when the size is known; 401 without
/// the token; 404 when the blob is neither in flight nor stored there.
public enum PeerProtocol {
    public static let pathPrefix = "/_mirrorgate/peer/v1/blobs/"
    public static let sizeHeader = "MirrorGate-Blob-Size"

    /// The path for `digest`.
    static func path(_ digest: Digest, registry: String) -> String {
        let escaped = registry.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~"))) ?? registry
        return pathPrefix + digest.description + "?registry=" + escaped
    }

    /// Whether `presented` (an Authorization header) carries `token`, in time independent of
    /// where they differ.
    public static func authorizes(_ presented: String?, token: String) -> Bool {
        let expected = Array(("Bearer " + token).utf8)
        let given = Array((presented ?? "").utf8)
        var difference: UInt8 = expected.count == given.count ? 0 : 1
        for index in expected.indices {
            difference |= expected[index] ^ (index < given.count ? given[index] : 0)
        }
        return difference == 0
    }
}

/// Streams in-flight blobs from other replicas' peer endpoints.
///
/// AsyncHTTPClient's deadline covers only the response head, so the body is read under a
/// ``GuardedBody`` watchdog: a peer that sends nothing for `readTimeout` (its node is gone and
/// no RST arrives) fails the read, and the waiter re-checks the lease.
final class PeerClient: Sendable {
    private let client: HTTPClient
    private let token: String
    /// How long the head may take: the holder answers once its upstream did.
    let headTimeout: Duration
    /// How long the body may go without a byte while the holder's upstream is still sending.
    let readTimeout: Duration

    init(token: String, headTimeout: Duration, readTimeout: Duration) {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        configuration.timeout = .init(connect: .seconds(5))
        // A refused connection (the holder died) must fail now, so the lease is looked at again.
        configuration.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.token = token
        self.headTimeout = headTimeout
        self.readTimeout = readTimeout
    }

    func shutdown() async throws {
        try await client.shutdown()
    }

    /// A peer's answer: the whole blob's size if known, and the bytes from the offset asked.
    struct Stream: Sendable {
        let size: UInt64?
        let body: GuardedBody
    }

    enum Failure: Error, Equatable {
        /// The peer answered with this status (404: not there; 401: wrong token).
        case status(Int)
        /// No answer (refused, reset, timed out).
        case connection(String)
    }

    /// Bytes `from...` of `digest` from the replica at `baseURL` (its advertise URL).
    func blob(_ digest: Digest, registry: String, at baseURL: String, from offset: UInt64) async throws(Failure) -> Stream {
        let base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        var request = HTTPClientRequest(url: base + PeerProtocol.path(digest, registry: registry))
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if offset > 0 { request.headers.add(name: "Range", value: "bytes=\(offset)-") }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .nanoseconds(Int64(headTimeout.components.seconds) * 1_000_000_000))
        } catch {
            throw .connection("\(UpstreamClient.classify(error))")
        }
        guard response.status == .ok else {
            // The error envelope is small; drain it so the connection can be reused.
            _ = try? await response.body.collect(upTo: 64 << 10)
            throw .status(Int(response.status.code))
        }
        let size = response.headers.first(name: PeerProtocol.sizeHeader).flatMap(UInt64.init)
        return Stream(size: size, body: GuardedBody(response.body, guards: .init(stallTimeout: readTimeout)))
    }
}
