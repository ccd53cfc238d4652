/// A repository name checked against the distribution spec grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most 255 bytes.
///
/// The grammar admits no `.`-only component, no `%`, no empty component and no
/// leading or trailing separator, so a valid name can never escape a directory.
public struct RepositoryName: Hashable, Sendable, CustomStringConvertible {
    /// Longest name accepted, as in distribution.
    public static let maxLength = 255

    public let value: String
    public var description: String { value }

    /// The `/`-separated components.
    public var components: [Substring] { value.split(separator: "/", omittingEmptySubsequences: false) }

    public init(parsing string: some StringProtocol) throws(RegistryError) {
        guard !string.isEmpty else { throw RegistryError(.nameInvalid, "repository name is empty") }
        guard string.utf8.count <= Self.maxLength else {
            throw RegistryError(.nameInvalid, "repository name is longer than \(Self.maxLength) characters")
        }
        for component in string.split(separator: "/", omittingEmptySubsequences: false) {
            guard Self.isValidComponent(component) else {
                throw RegistryError(.nameInvalid, "invalid repository name \(Digest.quoted(string)): component \(Digest.quoted(component)) does not match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*")
            }
        }
        self.value = String(string)
    }

    /// Joins validated components.
    public init(components: [Substring]) throws(RegistryError) {
        try self.init(parsing: components.joined(separator: "/"))
    }

    /// `true` when `component` matches `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
    public static func isValidComponent(_ component: some StringProtocol) -> Bool {
        let bytes = Array(component.utf8)
        guard let first = bytes.first, let last = bytes.last, isAlnum(first), isAlnum(last) else { return false }
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if isAlnum(b) { i += 1; continue }
            // A separator run: ".", "_", "__" or one or more "-", followed by an alphanumeric.
            var j = i
            switch b {
            case UInt8(ascii: "."):
                j += 1
            case UInt8(ascii: "_"):
                j += 1
                if j < bytes.count, bytes[j] == UInt8(ascii: "_") { j += 1 }
            case UInt8(ascii: "-"):
                while j < bytes.count, bytes[j] == UInt8(ascii: "-") { j += 1 }
            default:
                return false
            }
            guard j < bytes.count, isAlnum(bytes[j]) else { return false }
            i = j
        }
        return true
    }

    @inline(__always)
    static func isAlnum(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
    }

    /// Returns this name with `prefix` (a repository path on an upstream) in front.
    public func prefixed(with prefix: String) -> String {
        prefix.isEmpty ? value : prefix + "/" + value
    }
}
