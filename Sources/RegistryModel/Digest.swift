/// A content digest as used by the distribution API: `algorithm:encoded`.
///
/// Only the algorithms a registry may use for content addressing are accepted
/// (`sha256`, `sha512`); anything else is rejected before it touches disk or network,
/// so the encoded part can be used as a file name safely.
public struct Digest: Hashable, Sendable, CustomStringConvertible {
    /// The hash algorithm a digest names.
    public enum Algorithm: String, Sendable, CaseIterable {
        case sha256
        case sha512

        /// Length of the lowercase hex encoding.
        public var hexLength: Int {
            switch self {
            case .sha256: 64
            case .sha512: 128
            }
        }
    }

    public let algorithm: Algorithm
    /// Lowercase hex encoding of the hash.
    public let hex: String

    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>`.
    public init(parsing string: some StringProtocol) throws(RegistryError) {
        guard let colon = string.firstIndex(of: ":") else {
            throw RegistryError(.digestInvalid, "invalid digest \(Self.quoted(string)): expected algorithm:hex")
        }
        let algorithmPart = string[..<colon]
        let hexPart = string[string.index(after: colon)...]
        guard let algorithm = Algorithm(rawValue: String(algorithmPart)) else {
            throw RegistryError(.digestInvalid, "unsupported digest algorithm \(Self.quoted(algorithmPart)): use sha256 or sha512")
        }
        guard hexPart.utf8.count == algorithm.hexLength,
              hexPart.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else {
            throw RegistryError(.digestInvalid, "invalid \(algorithm.rawValue) digest: expected \(algorithm.hexLength) lowercase hex characters")
        }
        self.algorithm = algorithm
        self.hex = String(hexPart)
    }

    /// Creates a digest from already validated parts.
    public init(algorithm: Algorithm, hex: String) {
        self.algorithm = algorithm
        self.hex = hex
    }

    public var description: String { "\(algorithm.rawValue):\(hex)" }

    /// Quotes at most 80 characters of untrusted input for an error message.
    static func quoted(_ s: some StringProtocol) -> String {
        let cut = s.prefix(80)
        return "'" + cut + (cut.count < s.count ? "…'" : "'")
    }
}
