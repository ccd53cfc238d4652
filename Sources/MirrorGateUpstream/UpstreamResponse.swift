import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// An upstream answer whose head has arrived; the body streams.
public struct UpstreamResponse: Sendable {
    public let upstream: Upstream
    public let status: Int
    public let headers: HTTPHeaders
    public let body: HTTPClientResponse.Body
    /// How long ``collect(limit:)`` and ``discardBody()`` wait for the next byte (the
    /// upstream client's `health.timeout`).
    public let bodyTimeout: TimeAmount

    public init(upstream: Upstream, status: Int, headers: HTTPHeaders, body: HTTPClientResponse.Body, bodyTimeout: TimeAmount = .seconds(30)) {
        self.upstream = upstream
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyTimeout = bodyTimeout
    }

    public func header(_ name: String) -> String? { headers.first(name: name) }

    /// `Content-Length`, when present and valid: digits only, at most
    /// ``ContentRange/maxLength`` (`Int.max`), so it can become an `Int` anywhere.
    public var contentLength: UInt64? {
        header("content-length").flatMap { ContentRange.length(Substring($0).trimmingOWS()) }
    }

    /// The `Content-Range` of a 206, when present and valid (see ``ContentRange``).
    public var contentRange: ContentRange? {
        header("content-range").flatMap(ContentRange.init)
    }

    /// Reads the whole body, failing past `limit` bytes or after ``bodyTimeout`` without a byte.
    public func collect(limit: Int) async throws -> ByteBuffer {
        try await BodyCollector.collect(body, upTo: limit, stallTimeout: bodyTimeout)
    }

    /// Reads and drops a small body so the connection can be reused (giving up, which
    /// closes it, when it is large or stalls).
    public func discardBody() async {
        _ = try? await BodyCollector.collect(body, upTo: 1 << 20, stallTimeout: bodyTimeout)
    }
}
