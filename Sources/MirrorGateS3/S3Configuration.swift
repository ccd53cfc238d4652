import Foundation

/// Where the objects live and how to sign for them (`storage.s3` in `gateway.yaml`).
///
/// ``validate()`` names the offending key in its message, using the YAML names (`endpoint`,
/// `bucket`, `path_style`, ...). ``description`` never shows the secret.
public struct S3Configuration: Sendable, Equatable, CustomStringConvertible {
    /// How the bucket appears in URLs.
    public enum Addressing: String, Sendable, Equatable {
        /// `https://endpoint/bucket/key`: most self-hosted stores and moto.
        case pathStyle
        /// `https://bucket.endpoint/key`: AWS.
        case virtualHost
    }

    /// `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000` (scheme, host, optional
    /// port; no path, query or credentials).
    public var endpoint: String
    /// The SigV4 region, e.g. `eu-west-1` (`us-east-1` for most self-hosted stores).
    public var region: String
    public var bucket: String
    /// Prepended to every key as is (`mirrorgate/` gives `mirrorgate/blobs/...`); may be empty.
    public var prefix: String
    public var addressing: Addressing
    public var accessKeyID: String
    public var secretAccessKey: String
    /// Connect timeout, the wait for a response head, and the longest a request or response
    /// body may go without moving a byte.
    public var timeout: Duration

    public init(
        endpoint: String, region: String, bucket: String, prefix: String = "", addressing: Addressing = .virtualHost,
        accessKeyID: String, secretAccessKey: String, timeout: Duration = .seconds(30)
    ) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.prefix = prefix
        self.addressing = addressing
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.timeout = timeout
    }

    public var description: String {
        "S3Configuration(endpoint: \(endpoint), region: \(region), bucket: \(bucket), prefix: \"\(prefix)\", "
            + "addressing: \(addressing.rawValue), access_key_id: \(accessKeyID), secret_access_key: <redacted>)"
    }

    /// The parsed endpoint.
    public struct Endpoint: Sendable, Equatable {
        /// `http` or `https`.
        public let scheme: String
        /// Host name or IP (IPv6 in brackets).
        public let host: String
        /// `nil` when the scheme's default.
        public let port: Int?

        /// `host[:port]`, as the `Host` header and URLs carry it.
        public var authority: String { port.map { "\(host):\($0)" } ?? host }
        public var isTLS: Bool { scheme == "https" }
    }

    /// Checks every field and returns the parsed endpoint.
    /// - Throws: ``S3Error/Code/invalidConfiguration`` naming the key.
    public func validate() throws(S3Error) -> Endpoint {
        func fail(_ key: String, _ message: String) -> S3Error {
            S3Error(.invalidConfiguration, "\(key): \(message)")
        }
        guard let components = URLComponents(string: endpoint), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https"
        else {
            throw fail("endpoint", "\"\(endpoint)\" is not an http:// or https:// URL")
        }
        guard let rawHost = components.host, !rawHost.isEmpty else {
            throw fail("endpoint", "\"\(endpoint)\" has no host")
        }
        guard components.user == nil, components.password == nil else {
            throw fail("endpoint", "must not carry credentials; use access_key_id and secret_access_key")
        }
        guard components.path.isEmpty || components.path == "/", components.query == nil, components.fragment == nil else {
            throw fail("endpoint", "\"\(endpoint)\" must be scheme://host[:port] only (no path, query or fragment)")
        }
        let host = rawHost.contains(":") && !rawHost.hasPrefix("[") ? "[\(rawHost)]" : rawHost.lowercased()
        var port = components.port
        if port == (scheme == "https" ? 443 : 80) { port = nil }
        if let port, !(1...65535).contains(port) { throw fail("endpoint", "port \(port) is out of range") }

        guard !region.isEmpty, region.utf8.allSatisfy({ Self.isLowerAlnum($0) || $0 == UInt8(ascii: "-") }) else {
            throw fail("region", "\"\(region)\" is not a region name (lower-case letters, digits and '-', e.g. us-east-1)")
        }
        if addressing == .virtualHost, Self.isIPLiteral(rawHost) {
            throw fail("path_style", "must be true for an IP address endpoint (\(rawHost)): virtual-host style puts the bucket in the host name")
        }
        try validateBucket(scheme: scheme, fail: fail)
        guard !prefix.hasPrefix("/") else {
            throw fail("prefix", "\"\(prefix)\" must not start with '/' (S3 keys are not paths; use e.g. \"mirrorgate/\")")
        }
        guard prefix.utf8.count <= 512 else { throw fail("prefix", "is longer than 512 bytes") }
        guard !accessKeyID.isEmpty else { throw fail("access_key_id", "is empty") }
        guard !accessKeyID.contains(where: \.isWhitespace) else {
            throw fail("access_key_id", "contains whitespace")
        }
        guard !secretAccessKey.isEmpty else { throw fail("secret_access_key", "is empty") }
        guard !secretAccessKey.contains(where: \.isWhitespace) else {
            throw fail("secret_access_key", "contains whitespace (a trailing newline from the secret file?)")
        }
        guard timeout > .zero else { throw fail("timeout", "must be positive") }
        return Endpoint(scheme: scheme, host: host, port: port)
    }

    private func validateBucket(scheme: String, fail: (String, String) -> S3Error) throws(S3Error) {
        let bytes = Array(bucket.utf8)
        guard (3...63).contains(bytes.count),
            bytes.allSatisfy({ Self.isLowerAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }),
            Self.isLowerAlnum(bytes.first!), Self.isLowerAlnum(bytes.last!), !bucket.contains("..")
        else {
            throw fail("bucket", "\"\(bucket)\" is not a bucket name (3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit)")
        }
        // A dotted name under the endpoint's wildcard certificate (*.s3.amazonaws.com) does not verify.
        if addressing == .virtualHost, scheme == "https", bucket.contains(".") {
            throw fail("path_style", "must be true for bucket \"\(bucket)\": a bucket name with dots does not match the endpoint's TLS certificate in virtual-host style")
        }
    }

    private static func isIPLiteral(_ host: String) -> Bool {
        host.contains(":") || (host.split(separator: ".").count == 4 && host.split(separator: ".").allSatisfy { UInt8($0) != nil })
    }

    private static func isLowerAlnum(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
