import Foundation

/// One line of a registry's HTTP access log (Apache "combined" format).
///
/// CNCF distribution 2.8 with `log.accesslog.disabled: false` writes, on **standard
/// output**, one line per finished request, e.g.
///
///     127.0.0.1 - - [29/Nov/2026:05:00:47 +0000] "GET /v2/library/alpine/manifests/latest HTTP/1.1" 404 96 "" "skopeo/1.9.3"
///
/// (its JSON application log, `"msg":"response completed"` entries included, goes to
/// standard error). The line is written after the response has been sent, so a client
/// may see the response a moment before the line appears: poll, e.g. with
/// `UpstreamRegistry.waitForRequests(count:timeout:where:)`.
public struct RegistryRequest: Sendable, Hashable, CustomStringConvertible {
    /// The client address as logged (`127.0.0.1`).
    public let remoteAddress: String
    /// The HTTP method, e.g. `GET` or `HEAD`.
    public let method: String
    /// The request target as sent, query string included.
    public let uri: String
    /// The status code sent.
    public let status: Int
    /// Response body bytes written (0 when logged as `-`).
    public let bytes: Int
    /// The `User-Agent` header (empty if none).
    public let userAgent: String

    /// Creates an entry directly (useful for tests of code that consumes entries).
    public init(remoteAddress: String = "127.0.0.1", method: String, uri: String, status: Int, bytes: Int = 0, userAgent: String = "") {
        self.remoteAddress = remoteAddress
        self.method = method
        self.uri = uri
        self.status = status
        self.bytes = bytes
        self.userAgent = userAgent
    }

    /// The path part of ``uri`` (no query string).
    public var path: String {
        uri.firstIndex(of: "?").map { String(uri[..<$0]) } ?? uri
    }

    /// Whether this is a `/v2/<name>/manifests/<reference>` request.
    public var isManifest: Bool { path.hasPrefix("/v2/") && path.contains("/manifests/") }

    /// Whether this is a `/v2/<name>/blobs/<digest>` request (not an upload).
    public var isBlob: Bool { path.hasPrefix("/v2/") && path.contains("/blobs/") && !path.contains("/blobs/uploads") }

    /// The repository name of a manifest or blob request, e.g. `library/alpine`.
    public var repository: String? {
        guard path.hasPrefix("/v2/") else { return nil }
        let rest = path.dropFirst(4)
        for marker in ["/manifests/", "/blobs/", "/tags/list"] {
            if let range = rest.range(of: marker, options: .backwards) { return String(rest[..<range.lowerBound]) }
        }
        return nil
    }

    /// The tag or digest of a manifest or blob request.
    public var reference: String? {
        for marker in ["/manifests/", "/blobs/"] {
            if let range = path.range(of: marker, options: .backwards) {
                let value = String(path[range.upperBound...])
                return value.isEmpty ? nil : value
            }
        }
        return nil
    }

    /// `METHOD uri -> status`.
    public var description: String { "\(method) \(uri) -> \(status)" }

    /// Parses one combined-format line; `nil` for anything else (e.g. a JSON log line).
    public static func parse(line: some StringProtocol) -> RegistryRequest? {
        let line = String(line)
        guard !line.hasPrefix("{"),
              let firstQuote = line.firstIndex(of: "\"")
        else { return nil }
        let afterQuote = line.index(after: firstQuote)
        guard let closingQuote = line[afterQuote...].firstIndex(of: "\"") else { return nil }
        let requestLine = line[afterQuote..<closingQuote].split(separator: " ")
        guard requestLine.count >= 2 else { return nil }
        let remote = line[..<firstQuote].split(separator: " ").first.map(String.init) ?? ""
        let rest = line[line.index(after: closingQuote)...].split(separator: " ", maxSplits: 2)
        guard rest.count >= 2, let status = Int(rest[0]) else { return nil }
        let bytes = Int(rest[1]) ?? 0
        var agent = ""
        if rest.count == 3 {
            // `"referer" "user agent"`: take the last quoted field.
            let tail = rest[2].trimmingCharacters(in: .whitespaces)
            if tail.hasSuffix("\""), let open = tail.dropLast().lastIndex(of: "\"") {
                agent = String(tail[tail.index(after: open)..<tail.index(before: tail.endIndex)])
            }
        }
        return RegistryRequest(
            remoteAddress: remote,
            method: String(requestLine[0]),
            uri: String(requestLine[1]),
            status: status,
            bytes: bytes,
            userAgent: agent
        )
    }

    /// Parses every combined-format line of `text`, skipping other lines.
    public static func parseLog(_ text: String) -> [RegistryRequest] {
        text.split(separator: "\n").compactMap { parse(line: $0) }
    }
}
