import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// An upstream answer whose head has arrived; the body streams.
public struct UpstreamResponse: Sendable {
    public let upstream: Upstream
    public let status: Int
    public let headers: HTTPHeaders
    /// The body, guarded against an upstream that stops sending (`health.timeout`); readers
    /// that need more guards (a minimum rate, a size cap) re-guard it.
    public let body: GuardedBody

    public init(upstream: Upstream, status: Int, headers: HTTPHeaders, body: HTTPClientResponse.Body, bodyTimeout: Duration = .seconds(30)) {
        self.upstream = upstream
        self.status = status
        self.headers = headers
        self.body = GuardedBody(body, guards: .init(stallTimeout: bodyTimeout))
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

    /// Reads the whole body, failing past `limit` bytes or when it stalls.
    public func collect(limit: Int) async throws(UpstreamError) -> ByteBuffer {
        try await body.collect(upTo: limit)
    }

    /// Reads and drops a small body so the connection can be reused (giving up, which
    /// closes it, when it is large or stalls).
    public func discardBody() async {
        _ = try? await body.collect(upTo: 1 << 20)
    }
}
