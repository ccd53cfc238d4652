/// What a manifest request names: a tag or a digest.
public enum Reference: Hashable, Sendable, CustomStringConvertible {
    case tag(String)
    case digest(Digest)

    /// Longest tag allowed by the spec (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`).
    public static let maxTagLength = 128

    /// Parses a digest when the string contains `:`, a tag otherwise.
    public init(parsing string: some StringProtocol) throws(RegistryError) {
        if string.contains(":") {
            self = .digest(try Digest(parsing: string))
        } else {
            self = .tag(try Self.validatedTag(string))
        }
    }

    /// Validates a tag against `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. A string that is not a tag
    /// names a manifest that cannot exist: 404 `MANIFEST_UNKNOWN`, as the spec requires for a
    /// manifest that does not exist (and the conformance suite checks).
    public static func validatedTag(_ string: some StringProtocol) throws(RegistryError) -> String {
        let bytes = Array(string.utf8)
        guard !bytes.isEmpty else { throw RegistryError(.manifestUnknown, "manifest unknown: the tag is empty") }
        guard bytes.count <= maxTagLength else {
            throw RegistryError(.manifestUnknown, "manifest unknown: a tag is at most \(maxTagLength) characters, so no such manifest can exist")
        }
        func isWord(_ b: UInt8) -> Bool {
            (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == UInt8(ascii: "_")
        }
        guard isWord(bytes[0]),
              bytes.dropFirst().allSatisfy({ isWord($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") })
        else {
            throw RegistryError(.manifestUnknown, "manifest unknown: \(Digest.quoted(string)) is not a valid tag ([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}), so no such manifest can exist")
        }
        return String(string)
    }

    public var description: String {
        switch self {
        case .tag(let tag): tag
        case .digest(let digest): digest.description
        }
    }

    public var digest: Digest? {
        if case .digest(let d) = self { return d }
        return nil
    }
}
