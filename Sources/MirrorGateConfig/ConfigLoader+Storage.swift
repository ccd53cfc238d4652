import Foundation

/// The `storage` section of `gateway.yaml`: the cache's size limits and its backend, with
/// `storage.s3` checked here so a bad bucket name or endpoint stops start-up with the key and
/// line rather than with an S3 error later. (The S3 client checks the same rules again when it
/// is built; these are the ones a file can get wrong.)
extension ConfigLoader {
    func storage(_ node: ConfigNode?) throws(ConfigError) -> StorageConfig {
        var storage = StorageConfig(path: "./data", maxSize: 50 << 30)
        guard let node else { return storage }
        let s = try node.mapping(allowed: ["path", "max_size", "max_blob_size", "backend", "s3"])
        if let p = s["path"] { storage.path = try p.nonEmptyString() }
        if let m = s["max_size"] {
            storage.maxSize = try m.byteSize()
            guard storage.maxSize >= 1 << 20 else { throw m.invalid("must be at least 1MiB") }
        }
        if let b = s["max_blob_size"] {
            storage.maxBlobSize = try b.byteSize()
            guard storage.maxBlobSize >= 1 << 20 else { throw b.invalid("must be at least 1MiB") }
        }
        if let b = s["backend"] {
            let text = try b.nonEmptyString()
            guard let backend = StorageConfig.Backend(rawValue: text) else {
                throw b.invalid("'\(text)' is not a storage backend; use one of \(StorageConfig.Backend.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            storage.backend = backend
        }
        switch (storage.backend, s["s3"]) {
        case (.filesystem, nil):
            break
        case (.filesystem, let s3?):
            // Most likely a forgotten `backend: s3`: caching on local disk instead would go unnoticed.
            throw s3.invalid("is set, but storage.backend is filesystem (the default); set backend: s3, or remove storage.s3")
        case (.s3, nil):
            throw ConfigError.invalid(
                key: node.childPath("s3"), line: s["backend"]?.line ?? node.line,
                message: "required when storage.backend is s3 (endpoint, region, bucket, access_key_id and a secret)")
        case (.s3, let s3?):
            storage.s3 = try s3Storage(s3)
        }
        return storage
    }

    private func s3Storage(_ node: ConfigNode) throws(ConfigError) -> S3StorageConfig {
        let m = try node.mapping(allowed: [
            "endpoint", "region", "bucket", "prefix", "path_style", "access_key_id", "secret_access_key", "secret_access_key_file", "redirect",
        ])
        let endpointNode = try m.required("endpoint")
        let (endpoint, host, isTLS) = try Self.s3Endpoint(endpointNode)

        let regionNode = try m.required("region")
        let region = try regionNode.nonEmptyString()
        guard region.utf8.allSatisfy({ Self.isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") }) else {
            throw regionNode.invalid("'\(region)' is not a region name (lowercase letters, digits and '-', such as eu-west-1; us-east-1 for most self-hosted stores)")
        }

        let bucketNode = try m.required("bucket")
        let bucket = try bucketNode.nonEmptyString()
        let bytes = Array(bucket.utf8)
        guard (3...63).contains(bytes.count),
            bytes.allSatisfy({ Self.isLowerAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }),
            Self.isLowerAlphanumeric(bytes.first!), Self.isLowerAlphanumeric(bytes.last!), !bucket.contains("..")
        else {
            throw bucketNode.invalid("'\(bucket)' is not a bucket name (3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit)")
        }

        var config = S3StorageConfig(endpoint: endpoint, region: region, bucket: bucket, accessKeyID: "", secretAccessKey: Secret(""))
        if let p = m["prefix"] {
            config.prefix = try p.string()
            guard !config.prefix.hasPrefix("/") else {
                throw p.invalid("'\(config.prefix)' must not start with '/' (keys are not paths; use e.g. mirrorgate/)")
            }
            guard config.prefix.utf8.count <= 512 else { throw p.invalid("is longer than 512 bytes") }
        }
        if let p = m["path_style"] { config.pathStyle = try p.bool() }
        if !config.pathStyle {
            // Virtual-host style puts the bucket in the host name.
            let key = node.childPath("path_style")
            let line = m["path_style"]?.line ?? endpointNode.line
            if Self.isIPAddress(host) {
                throw ConfigError.invalid(key: key, line: line, message: "must be true for an IP address endpoint (\(host))")
            }
            if isTLS, bucket.contains(".") {
                throw ConfigError.invalid(
                    key: key, line: line,
                    message: "must be true for bucket '\(bucket)': a name with dots does not match the endpoint's TLS certificate in virtual-host style")
            }
        }

        let keyNode = try m.required("access_key_id")
        config.accessKeyID = try keyNode.nonEmptyString()
        guard !config.accessKeyID.contains(where: \.isWhitespace) else { throw keyNode.invalid("contains whitespace") }
        config.secretAccessKey = try s3Secret(m, in: node)
        if let r = m["redirect"] { config.redirect = try r.bool() }
        return config
    }

    /// `secret_access_key` or `secret_access_key_file` (one line; its line end is dropped).
    private func s3Secret(_ m: OrderedEntries, in node: ConfigNode) throws(ConfigError) -> Secret {
        let secret: String
        let source: ConfigNode
        switch (m["secret_access_key"], m["secret_access_key_file"]) {
        case (nil, nil):
            throw ConfigError.invalid(
                key: node.childPath("secret_access_key"), line: node.line, message: "required: set secret_access_key or secret_access_key_file")
        case (_?, let file?):
            throw file.invalid("set either secret_access_key or secret_access_key_file, not both")
        case (let value?, nil):
            source = value
            secret = try value.string()
        case (nil, let file?):
            source = file
            let path = try file.nonEmptyString()
            do {
                var text = try readFile(path)
                // "\r\n" is one Character in Swift: strip line ends scalar by scalar.
                while let last = text.unicodeScalars.last, last == "\n" || last == "\r" {
                    text.unicodeScalars.removeLast()
                }
                secret = text
            } catch {
                throw ConfigError.unreadableSecretFile(path: path, key: file.path, line: file.line, reason: Self.reason(error))
            }
        }
        guard !secret.isEmpty else { throw source.invalid("the secret is empty") }
        guard !secret.contains(where: \.isWhitespace) else { throw source.invalid("the secret contains whitespace") }
        return Secret(secret)
    }

    /// `http(s)://host[:port]`, returned without a trailing slash, with its host and scheme.
    static func s3Endpoint(_ node: ConfigNode) throws(ConfigError) -> (endpoint: String, host: String, isTLS: Bool) {
        var text = try node.nonEmptyString()
        while text.hasSuffix("/") { text.removeLast() }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else {
            throw node.invalid("'\(text)' is not an http:// or https:// URL with a host")
        }
        guard components.user == nil, components.password == nil else {
            throw node.invalid("must not carry credentials; use access_key_id and secret_access_key")
        }
        guard components.path.isEmpty, components.query == nil, components.fragment == nil else {
            throw node.invalid("'\(text)' must be scheme://host[:port] only (no path, query or fragment; the bucket goes in bucket)")
        }
        if let port = components.port, !(1...65535).contains(port) { throw node.invalid("port must be from 1 to 65535") }
        var bare = host.lowercased()
        if bare.hasPrefix("["), bare.hasSuffix("]") { bare = String(bare.dropFirst().dropLast()) }
        return (text, bare, scheme == "https")
    }

    static func isIPAddress(_ host: String) -> Bool {
        if isIPv6Literal(host) { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
