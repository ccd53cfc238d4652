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
