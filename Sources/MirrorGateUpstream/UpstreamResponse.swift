import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// An upstream answer whose head has arrived; the body streams.
public struct UpstreamResponse: Sendable {
    public let upstream: Upstream
    public let status: Int
    public let headers: HTTPHeaders
    public let body: HTTPClientResponse.Body

    public init(upstream: Upstream, status: Int, headers: HTTPHeaders, body: HTTPClientResponse.Body) {
        self.upstream = upstream
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? { headers.first(name: name) }

    /// `Content-Length`, when present and valid.
    public var contentLength: UInt64? {
        header("content-length").flatMap { UInt64($0.trimmingCharacters(in: " ")) }
    }

    /// Reads the whole body, failing past `limit` bytes.
    public func collect(limit: Int) async throws -> ByteBuffer {
        do {
            return try await body.collect(upTo: limit)
        } catch let error as NIOTooManyBytesError {
            throw UpstreamError.protocolViolation("body larger than \(limit) bytes (\(error))")
        } catch {
            throw UpstreamClient.classify(error)
        }
    }

    /// Reads and drops a small body so the connection can be reused.
    public func discardBody() async {
        _ = try? await body.collect(upTo: 1 << 20)
    }
}

extension String {
    func trimmingCharacters(in c: Character) -> String {
        var s = Substring(self)
        while s.first == c { s.removeFirst() }
        while s.last == c { s.removeLast() }
        return String(s)
    }
}
