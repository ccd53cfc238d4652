/// A `Content-Range` of a 206 answer (RFC 9110 §14.4): `bytes first-last/complete`, where
/// `complete` may be `*` (unknown).
///
/// Its numbers come from the network and end up in sizes, offsets and `Int` counts, so they
/// are read only when they fit ``maxLength`` and describe a range that exists:
/// `first <= last`, and `last < complete` when the length is known.
public struct ContentRange: Equatable, Sendable {
    /// The largest length or offset read from an upstream's headers (`Content-Length` too):
    /// `Int.max`, so that no size the gateway learns from the network traps where it becomes
    /// an `Int` (a response body's length, a range's count). No blob is that large.
    public static let maxLength = UInt64(Int.max)

    public var first: UInt64
    public var last: UInt64
    /// The representation's length, `nil` for `*`.
    public var complete: UInt64?

    public init?(first: UInt64, last: UInt64, complete: UInt64?) {
        guard first <= last, last < Self.maxLength, complete.map({ last < $0 && $0 <= Self.maxLength }) ?? true else {
            return nil
        }
        self.first = first
        self.last = last
        self.complete = complete
    }

    /// Parses a header value; `nil` for anything else (other units, `bytes */1000`, a
    /// reversed range, numbers past ``maxLength``).
    public init?(_ header: String) {
        let value = Substring(header).trimmingOWS()
        guard value.count > 6, value.prefix(6).lowercased() == "bytes " else { return nil }
        let spec = value.dropFirst(6).trimmingOWS()
        guard let slash = spec.firstIndex(of: "/"), let dash = spec[..<slash].firstIndex(of: "-") else { return nil }
        let completeText = spec[spec.index(after: slash)...]
        guard let first = Self.length(spec[..<dash]), let last = Self.length(spec[spec.index(after: dash)..<slash]) else {
            return nil
        }
        let complete: UInt64?
        if completeText == "*" {
            complete = nil
        } else {
            guard let n = Self.length(completeText) else { return nil }
            complete = n
        }
        self.init(first: first, last: last, complete: complete)
    }

    /// A length or offset: decimal digits only (`UInt64(_:)` also takes `+5`), at most
    /// ``maxLength``; `nil` otherwise.
    static func length(_ s: Substring) -> UInt64? {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = UInt64(s), n <= maxLength else { return nil }
        return n
    }
}
