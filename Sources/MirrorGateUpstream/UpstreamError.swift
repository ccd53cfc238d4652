import Foundation

/// Why an upstream request failed before producing a usable response.
public enum UpstreamError: Error, Sendable, CustomStringConvertible {
    /// Connection refused, reset, DNS or TLS failure.
    case connection(String)
    /// No response head within `health.timeout`, or a body that stalled that long.
    case timeout(String)
    /// A redirect the gateway refuses to follow (too many, a downgrade to http, no Location).
    case redirect(String)
    /// The token service did not give a token.
    case authentication(String)
    /// A malformed or unexpected response.
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .connection(let m): "connection failed: \(m)"
        case .timeout(let m): "timed out: \(m)"
        case .redirect(let m): "redirect refused: \(m)"
        case .authentication(let m): "authentication failed: \(m)"
        case .protocolViolation(let m): "bad response: \(m)"
        }
    }
}

extension UpstreamError {
    /// The description of an error this module does not know, when it cannot name a place:
    /// no `:`, `/`, `@` or brackets (URLs, userinfo, `host:port`, IPv6) and no dotted
    /// numbers (IPv4). Otherwise only its type's name: such messages reach clients.
    static func describe(unknown error: any Error) -> String {
        let text = "\(error)"
        let placeLike = text.contains { ":/@[]".contains($0) } || text.range(of: #"\d+\.\d+\.\d+"#, options: .regularExpression) != nil
        return placeLike || text.isEmpty ? String(describing: type(of: error)) : text
    }
}

extension String {
    func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}
