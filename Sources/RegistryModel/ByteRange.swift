/// A single `Range: bytes=…` request (RFC 9110 §14.1.2).
///
/// Multiple ranges are not supported: such a header is treated as absent and the whole
/// representation is served with 200, which RFC 9110 allows.
public enum ByteRange: Equatable, Sendable {
    /// `bytes=first-` or `bytes=first-last`.
    case from(first: UInt64, last: UInt64?)
    /// `bytes=-length`: the final `length` bytes.
    case suffix(length: UInt64)

    /// Parses a `Range` header value. Returns `nil` for a header that should be ignored
    /// (another unit, several ranges); throws 416 `SIZE_INVALID` for a malformed `bytes=` range.
    public static func parse(_ header: String) throws(RegistryError) -> ByteRange? {
        let value = Substring(header).trimmingSpaces()
        guard value.lowercased().hasPrefix("bytes=") else { return nil }
        let spec = value.dropFirst("bytes=".count).trimmingSpaces()
        if spec.contains(",") { return nil }
        guard let dash = spec.firstIndex(of: "-") else { throw invalid(header) }
        let firstPart = spec[..<dash].trimmingSpaces()
        let lastPart = spec[spec.index(after: dash)...].trimmingSpaces()
        if firstPart.isEmpty {
            guard let length = parseNumber(lastPart) else { throw invalid(header) }
            return .suffix(length: length)
        }
        guard let first = parseNumber(firstPart) else { throw invalid(header) }
        if lastPart.isEmpty { return .from(first: first, last: nil) }
        guard let last = parseNumber(lastPart), !isLess(lastPart, than: firstPart) else { throw invalid(header) }
        return .from(first: first, last: last)
    }

    /// The inclusive byte positions this range selects from a representation of `length`
    /// bytes, or `nil` when it is unsatisfiable (answer 416 with `Content-Range: bytes */length`).
    public func resolve(length: UInt64) -> ClosedRange<UInt64>? {
        guard length > 0 else { return nil }
        switch self {
        case .from(let first, let last):
            guard first < length else { return nil }
            return first...min(last ?? (length - 1), length - 1)
        case .suffix(let count):
            guard count > 0 else { return nil }
            return (length - min(count, length))...(length - 1)
        }
    }

    /// `1*DIGIT` of any length. A number past `UInt64.max` saturates, which keeps RFC 9110's
    /// meaning whatever the length: a last-pos or suffix-length that large covers the rest of
    /// any representation, and a first-pos that large is past its end (unsatisfiable).
    private static func parseNumber(_ s: Substring) -> UInt64? {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(s) ?? .max
    }

    /// Compares two digit strings by value, exactly, however long they are.
    private static func isLess(_ a: Substring, than b: Substring) -> Bool {
        let x = a.utf8.drop { $0 == UInt8(ascii: "0") }
        let y = b.utf8.drop { $0 == UInt8(ascii: "0") }
        return x.count != y.count ? x.count < y.count : x.lexicographicallyPrecedes(y)
    }

    private static func invalid(_ header: String) -> RegistryError {
        RegistryError(.sizeInvalid, "invalid Range header \(Digest.quoted(header))")
    }
}
