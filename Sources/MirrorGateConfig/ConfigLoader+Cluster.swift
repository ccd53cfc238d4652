import Foundation

/// `metadata:` and `cluster:`: the shared database of several replicas, and how they reach
/// each other.
extension ConfigLoader {
    func metadata(_ node: ConfigNode?) throws(ConfigError) -> MetadataConfig {
        var config = MetadataConfig()
        guard let node else { return config }
        let m = try node.mapping(allowed: ["backend", "postgres"])
        if let b = m["backend"] {
            let text = try b.nonEmptyString()
            guard let backend = MetadataConfig.Backend(rawValue: text) else {
                throw b.invalid("'\(text)' is not a metadata backend; use one of \(MetadataConfig.Backend.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config.backend = backend
        }
        switch (config.backend, m["postgres"]) {
        case (.postgres, let p?):
            config.postgres = try postgres(p)
        case (.postgres, nil):
            throw ConfigError.invalid(key: "metadata.postgres", line: node.line, message: "required when metadata.backend is postgres")
        case (.sqlite, let p?):
            throw p.invalid("is set, but metadata.backend is sqlite; set backend: postgres to use it, or remove it")
        case (.sqlite, nil):
            break
        }
        return config
    }

    private func postgres(_ node: ConfigNode) throws(ConfigError) -> PostgresMetadataConfig {
        let p = try node.mapping(allowed: ["url", "password", "password_file", "pool_size"])
        let urlNode = try p.required("url")
        var config = try Self.postgresURL(urlNode)
        if let value = p["password"], let file = p["password_file"] {
            _ = value
            throw file.invalid("set either password or password_file, not both")
        }
        if let value = p["password"] { config.password = Secret(try value.string()) }
        if let file = p["password_file"] {
            let path = try file.nonEmptyString()
            config.password = Secret(try secretFile(path, file))
            config.passwordFile = path
        }
        if let size = p["pool_size"] {
            // One connection listens for notifications; the rest serve calls.
            config.poolSize = try size.int(min: 2, max: 1000)
        }
        return config
    }

    /// `postgres://user@host:port/database?sslmode=…` (or `postgresql://`), without a password.
    static func postgresURL(_ node: ConfigNode) throws(ConfigError) -> PostgresMetadataConfig {
        let s = try node.nonEmptyString()
        guard let components = URLComponents(string: s), let scheme = components.scheme?.lowercased(),
              scheme == "postgres" || scheme == "postgresql"
        else {
            throw node.invalid("'\(redacted(s))' is not a postgres:// URL (postgres://USER@HOST:PORT/DATABASE)")
        }
        guard components.password == nil else {
            throw node.invalid("put the password in metadata.postgres.password_file or metadata.postgres.password, not in the URL")
        }
        guard var host = components.host, !host.isEmpty else {
            throw node.invalid("the URL names no host (postgres://USER@HOST:PORT/DATABASE)")
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let user = components.user, !user.isEmpty else {
            throw node.invalid("the URL names no user (postgres://USER@\(host)/DATABASE)")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw node.invalid("port must be from 1 to 65535")
        }
        guard components.fragment == nil else { throw node.invalid("the URL must not have a fragment") }
        var database = components.path
        while database.hasPrefix("/") { database.removeFirst() }
        guard !database.contains("/") else { throw node.invalid("'\(database)' is not a database name (one path component)") }
        var config = PostgresMetadataConfig(host: host.lowercased(), port: components.port ?? 5432, user: user, database: database.isEmpty ? user : database)
        for item in components.queryItems ?? [] {
            guard item.name == "sslmode" else {
                throw node.invalid("unknown URL parameter '\(item.name)'; only sslmode is supported")
            }
            guard let mode = item.value.flatMap(PostgresMetadataConfig.SSLMode.init(rawValue:)) else {
                throw node.invalid("sslmode '\(item.value ?? "")' is not supported; use one of \(PostgresMetadataConfig.SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config.sslMode = mode
        }
        return config
    }

    /// The URL as errors may show it: anything between `://` and `@` is dropped.
    private static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
        return String(url[..<scheme.upperBound]) + "…" + String(url[at...])
    }

    func cluster(_ node: ConfigNode?, metadata: MetadataConfig, listen: ListenAddress, adminListen: ListenAddress?) throws(ConfigError) -> ClusterConfig? {
        guard let node else {
            if metadata.backend == .postgres {
                throw ConfigError.invalid(
                    key: "cluster", line: nil,
                    message: "required when metadata.backend is postgres: replicas stream in-flight blobs from each other (peer_listen, advertise_url, peer_token_file)")
            }
            return nil
        }
        guard metadata.backend == .postgres else {
            throw node.invalid("needs metadata.backend: postgres (replicas share their state there); remove cluster for a single replica")
        }
        let c = try node.mapping(allowed: ["peer_listen", "advertise_url", "peer_token_file"])
        let listenNode = try c.required("peer_listen")
        let peerListen = try Self.listenAddress(listenNode)
        for (other, key) in [(listen, "listen"), (adminListen, "admin_listen")] {
            guard let other, other.port == peerListen.port, peerListen.port != 0 else { continue }
            if other.host == peerListen.host || other.host == "0.0.0.0" || peerListen.host == "0.0.0.0" {
                throw listenNode.invalid("must differ from \(key) (\(other)): the peer port is kept inside the cluster")
            }
        }
        let urlNode = try c.required("advertise_url")
        let advertise = try Self.upstreamURL(urlNode)
        guard advertise.basePath.isEmpty else { throw urlNode.invalid("must be scheme://host:port without a path") }
        guard !["0.0.0.0", "::"].contains(advertise.host) else {
            throw urlNode.invalid("'\(advertise.host)' is not an address other replicas can reach; advertise the pod's address, e.g. http://${POD_IP}:\(peerListen.port)")
        }
        let tokenNode = try c.required("peer_token_file")
        let path = try tokenNode.nonEmptyString()
        let token = try secretFile(path, tokenNode)
        guard token.count >= ClusterConfig.minimumTokenLength else {
            throw tokenNode.invalid("the token in \(path) is shorter than \(ClusterConfig.minimumTokenLength) characters; make one with `openssl rand -hex 32`")
        }
        return ClusterConfig(peerListen: peerListen, advertiseURL: advertise, peerToken: Secret(token), peerTokenFile: path)
    }

    /// A secret read from a file, without its line ends.
    private func secretFile(_ path: String, _ node: ConfigNode) throws(ConfigError) -> String {
        do {
            var secret = try readFile(path)
            // "\r\n" is one Character in Swift: strip line ends scalar by scalar.
            while let last = secret.unicodeScalars.last, last == "\n" || last == "\r" {
                secret.unicodeScalars.removeLast()
            }
            return secret
        } catch {
            throw ConfigError.unreadableSecretFile(path: path, key: node.path, line: node.line, reason: Self.reason(error))
        }
    }
}
