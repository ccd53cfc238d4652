/// An image as users write it on a command line (`alpine`, `alpine:3.20`,
/// `library/alpine@sha256:…`, `ghcr.io/org/app:tag`, `registry.example.com:5000/x/y:z`),
/// normalised the way Docker does it (distribution's `ParseNormalizedNamed`):
///
/// - the first `/`-separated component is the registry when it contains `.` or `:`, is
///   `localhost`, or has an upper-case letter; otherwise the registry is `docker.io`. A
///   registry named by upper case alone (`Registry/app`) is rejected: lower-cased it would
///   read as a Docker Hub namespace, and MirrorGate's registries all have a dot or a port;
/// - Docker Hub's other host names (`index.docker.io`, `registry-1.docker.io`,
///   `registry.hub.docker.com`) are `docker.io`;
/// - a single-component Docker Hub name gets `library/` (`alpine` = `library/alpine`);
/// - without a tag or digest the tag is `latest`; with both (`name:tag@digest`) the digest
///   is what is pulled and the tag is kept for display.
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    /// The registry host (lower-cased, with its port if any), e.g. `docker.io`, `ghcr.io`,
    /// `registry.example.com:5000`.
    public let registry: String
    /// The repository within the registry, e.g. `library/alpine`.
    public let repository: RepositoryName
    /// What to pull: the digest when one was given, else the tag (`latest` by default).
    public let reference: Reference
    /// The tag written next to a digest (`name:tag@digest`), kept for display only.
    public let tag: String?

    /// The registry used when the name does not start with one.
    public static let defaultRegistry = "docker.io"
    /// The tag used when none is given.
    public static let defaultTag = "latest"

    /// Creates a reference from validated parts.
    public init(registry: String, repository: RepositoryName, reference: Reference, tag: String? = nil) {
        self.registry = registry
        self.repository = repository
        self.reference = reference
        self.tag = tag
    }

    /// Parses and normalises `string`.
    public init(parsing string: some StringProtocol) throws(RegistryError) {
        let text = String(string)
        guard !text.isEmpty else { throw RegistryError(.nameInvalid, "image reference is empty") }
        guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw RegistryError(.nameInvalid, "invalid image reference \(Digest.quoted(text)): only printable ASCII without spaces is allowed")
        }

        // Split off the registry.
        var registry = Self.defaultRegistry
        var remainder = Substring(text)
        if let slash = text.firstIndex(of: "/") {
            let first = text[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" || first.contains(where: \.isUppercase) {
                guard Self.isValidHost(first) else {
                    throw RegistryError(.nameInvalid, "invalid registry \(Digest.quoted(first)) in image reference \(Digest.quoted(text))")
                }
                registry = RegistryHost.canonical(first.lowercased())
                // An upper-case letter alone marks `Registry/app` as a host, but lower-cased it no
                // longer reads as one (`registry/app:latest` is Docker Hub's), and no configured
                // registry can be a bare single-label name.
                guard registry.contains(".") || registry.contains(":") || registry == "localhost" else {
                    throw RegistryError(.nameInvalid, "invalid registry \(Digest.quoted(first)) in image reference \(Digest.quoted(text)): a registry host has a dot or a port, or is localhost")
                }
                remainder = text[text.index(after: slash)...]
            }
        }

        // Split off the digest, then the tag (the remainder holds no port any more).
        var digest: Digest?
        if let at = remainder.firstIndex(of: "@") {
            digest = try Digest(parsing: remainder[remainder.index(after: at)...])
            remainder = remainder[..<at]
        }
        var tag: String?
        if let colon = remainder.lastIndex(of: ":") {
            tag = try Reference.validatedTag(remainder[remainder.index(after: colon)...])
            remainder = remainder[..<colon]
        }

        let components = RegistryHost.repositoryComponents(remainder.split(separator: "/", omittingEmptySubsequences: false), registry: registry)
        let repository = try RepositoryName(components: components)
        self.init(
            registry: registry,
            repository: repository,
            reference: digest.map(Reference.digest) ?? .tag(tag ?? Self.defaultTag),
            tag: digest == nil ? nil : tag)
    }

    /// `registry/repository:tag`, `registry/repository@digest` or
    /// `registry/repository:tag@digest`.
    public var description: String {
        let base = "\(registry)/\(repository)"
        switch reference {
        case .tag(let tag): return "\(base):\(tag)"
        case .digest(let digest): return tag.map { "\(base):\($0)@\(digest)" } ?? "\(base)@\(digest)"
        }
    }

    /// `host[:port]`: host components of letters, digits and inner `-`, joined by `.`;
    /// a port of 1 to 5 digits.
    static func isValidHost(_ string: Substring) -> Bool {
        var host = string
        if let colon = string.firstIndex(of: ":") {
            let port = string[string.index(after: colon)...]
            guard (1...5).contains(port.count), port.allSatisfy(\.isASCIIDigit) else { return false }
            host = string[..<colon]
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        return !labels.isEmpty && labels.allSatisfy { label in
            guard let first = label.first, let last = label.last, first != "-", last != "-" else { return false }
            return label.allSatisfy { $0.isASCIIAlphanumeric || $0 == "-" }
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
    fileprivate var isASCIIAlphanumeric: Bool { isASCII && (isLetter || isNumber) }
}
