/// A platform as written on a command line (`linux/amd64`, `linux/arm64/v8`) or found in an
/// index entry's `platform` object, with containerd's matching rules: OS and architecture
/// must be equal (case-insensitively); a variant asked for must be equal, no variant asked
/// for matches any; `arm64` without a variant is `arm64/v8`.
public struct ImagePlatform: Hashable, Sendable, CustomStringConvertible {
    /// Operating system, e.g. `linux`.
    public let os: String
    /// CPU architecture, e.g. `amd64`, `arm64`.
    public let architecture: String
    /// CPU variant, e.g. `v8`, `v7`; `nil` when not given.
    public let variant: String?

    /// Creates a platform (values are lower-cased; an empty variant is none).
    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os.lowercased()
        self.architecture = architecture.lowercased()
        self.variant = variant.flatMap { $0.isEmpty ? nil : $0.lowercased() }
    }

    /// Parses `os/arch` or `os/arch/variant`.
    public init(parsing string: some StringProtocol) throws(RegistryError) {
        let parts = string.split(separator: "/", omittingEmptySubsequences: false)
        let valid = (2...3).contains(parts.count)
            && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") } }
        guard valid else {
            throw RegistryError(.nameInvalid, "invalid platform \(Digest.quoted(string)): expected os/arch or os/arch/variant, such as linux/amd64 or linux/arm64/v8")
        }
        self.init(os: String(parts[0]), architecture: String(parts[1]), variant: parts.count == 3 ? String(parts[2]) : nil)
    }

    /// The variant used for comparison: `v8` for `arm64` when none is given.
    var effectiveVariant: String? {
        variant ?? (architecture == "arm64" ? "v8" : nil)
    }

    /// Whether an index entry for `candidate` satisfies this platform as a request.
    public func matches(_ candidate: ImagePlatform) -> Bool {
        guard os == candidate.os, architecture == candidate.architecture else { return false }
        guard variant != nil else { return true }
        return effectiveVariant == candidate.effectiveVariant
    }

    /// `os/arch` or `os/arch/variant`.
    public var description: String {
        [os, architecture, variant].compactMap { $0 }.joined(separator: "/")
    }
}
