import AsyncHTTPClient
import Foundation

/// A tiny HTTP client for tests, built on AsyncHTTPClient's shared client.
///
/// It buffers whole responses, which is what tests want for manifests and small
/// blobs; it follows redirects (the shared client's default) unless told not to. Only
/// loopback URLs are ever used by the integration tests.
public struct HTTPFetch: Sendable {
    /// A buffered HTTP response.
    public struct Response: Sendable {
        /// The status code, e.g. 200.
        public let status: Int
        /// Header fields in the order received (names as sent by the server).
        public let headers: [(name: String, value: String)]
        /// The full response body (empty for HEAD).
        public let body: Data

        /// The first value of header `name` (case-insensitive), if present.
        public func header(_ name: String) -> String? {
            headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
        }

        /// The body decoded as UTF-8 (lossy), for error messages.
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// A request that did not complete in time.
    public struct Timeout: Error, CustomStringConvertible {
        /// The URL requested.
        public let url: String
        public var description: String { "HTTPFetch: request to \(url) timed out" }
    }

    /// Sends one request and buffers the response.
    ///
    /// - Parameters:
    ///   - url: An absolute URL, e.g. `http://127.0.0.1:5000/v2/`.
    ///   - method: The HTTP method (`GET`, `HEAD`, `PUT`, ...).
    ///   - headers: Extra request headers.
    ///   - body: Optional request body.
    ///   - timeout: Overall deadline for the request, including reading the body.
    ///   - maxBodyBytes: Fail if the body is larger than this.
    ///   - followRedirects: Follow 3xx answers (`false` returns them as they are).
    public static func request(
        _ url: String,
        method: String = "GET",
        headers: [(String, String)] = [],
        body: Data? = nil,
        timeout: Duration = .seconds(30),
        maxBodyBytes: Int = 512 << 20,
        followRedirects: Bool = true
    ) async throws -> Response {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(body) }
        let components = timeout.components
        let milliseconds = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        let client = followRedirects ? HTTPClient.shared : Self.notFollowing
        let response = try await client.execute(request, timeout: .milliseconds(milliseconds))
        var data = Data()
        for try await chunk in response.body {
            data.append(contentsOf: chunk.readableBytesView)
            if data.count > maxBodyBytes {
                throw CocoaError(.fileReadTooLarge, userInfo: [NSLocalizedDescriptionKey: "body of \(url) exceeds \(maxBodyBytes) bytes"])
            }
        }
        let fields = response.headers.map { (name: $0.name, value: $0.value) }
        return Response(status: Int(response.status.code), headers: fields, body: data)
    }

    /// For requests that must see a redirect itself. Never shut down: it lives as long as the
    /// test process, like `HTTPClient.shared`.
    private static let notFollowing = HTTPClient(
        eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))

    /// `GET url` with optional headers.
    public static func get(_ url: String, headers: [(String, String)] = [], timeout: Duration = .seconds(30)) async throws -> Response {
        try await request(url, method: "GET", headers: headers, timeout: timeout)
    }

    /// `HEAD url` with optional headers.
    public static func head(_ url: String, headers: [(String, String)] = [], timeout: Duration = .seconds(30)) async throws -> Response {
        try await request(url, method: "HEAD", headers: headers, timeout: timeout)
    }
}
