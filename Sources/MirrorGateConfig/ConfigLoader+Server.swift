import Foundation

/// The server sections of `gateway.yaml` (`log`, `tls`, `auth`, `limits`) and the inbound
/// access of registries (`registries.<key>.users`).
extension ConfigLoader {
    func log(_ node: ConfigNode?) throws(ConfigError) -> LogConfig {
        var log = LogConfig()
        guard let node else { return log }
        let l = try node.mapping(allowed: ["format", "level"])
        if let f = l["format"] {
            let text = try f.nonEmptyString()
            guard let format = LogConfig.Format(rawValue: text) else {
                throw f.invalid("'\(text)' is not a log format; use one of \(LogConfig.Format.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            log.format = format
        }
        if let v = l["level"] {
            let level = try v.nonEmptyString()
            guard LogConfig.levels.contains(level) else {
                throw v.invalid("'\(level)' is not a log level; use one of \(LogConfig.levels.joined(separator: ", "))")
            }
            log.level = level
        }
        return log
    }

    func tls(_ node: ConfigNode?) throws(ConfigError) -> ListenerTLSConfig? {
        guard let node else { return nil }
        let t = try node.mapping(allowed: ["cert", "key"])
        let cert = try t.required("cert")
        let key = try t.required("key")
        let config = ListenerTLSConfig(certificatePath: try cert.nonEmptyString(), keyPath: try key.nonEmptyString())
        try readable(config.certificatePath, cert)
        try readable(config.keyPath, key)
        return config
    }

    func auth(_ node: ConfigNode?) throws(ConfigError) -> InboundAuthConfig? {
        guard let node else { return nil }
        let a = try node.mapping(allowed: ["htpasswd", "realm", "max_failures", "failure_window"])
        let file = try a.required("htpasswd")
        var config = InboundAuthConfig(htpasswdPath: try file.nonEmptyString())
        try readable(config.htpasswdPath, file)
        if let r = a["realm"] {
            config.realm = try r.nonEmptyString()
            guard config.realm.allSatisfy({ $0.isASCII && $0 != "\"" && $0 != "\\" && !$0.isNewline }) else {
                throw r.invalid("must be printable ASCII without quotes or backslashes")
            }
        }
        if let m = a["max_failures"] { config.maxFailures = try m.int(min: 1, max: 100_000) }
        if let w = a["failure_window"] {
            config.failureWindow = try w.duration()
            guard config.failureWindow >= .seconds(1), config.failureWindow <= .seconds(86_400) else { throw w.invalid("must be from 1s to 1d") }
        }
        return config
    }

    func limits(_ node: ConfigNode?) throws(ConfigError) -> LimitsConfig {
        var limits = LimitsConfig()
        guard let node else { return limits }
        let l = try node.mapping(allowed: [
            "max_header_size", "idle_timeout", "send_timeout", "max_concurrent_fetches", "max_connections", "min_fetch_rate", "fetch_rate_grace",
        ])
        if let h = l["max_header_size"] {
            let size = try h.byteSize()
            guard size >= 4 << 10, size <= 1 << 20 else { throw h.invalid("must be from 4KiB to 1MiB") }
            limits.maxHeaderSize = Int(size)
        }
        if let i = l["idle_timeout"] {
            limits.idleTimeout = try i.duration()
            guard limits.idleTimeout >= .seconds(1) else { throw i.invalid("must be at least 1s") }
        }
        if let s = l["send_timeout"] {
            limits.sendTimeout = try s.duration()
            guard limits.sendTimeout >= .seconds(1) else { throw s.invalid("must be at least 1s") }
        }
        if let f = l["max_concurrent_fetches"] { limits.maxConcurrentFetches = try f.int(min: 1, max: 10_000) }
        if let c = l["max_connections"] { limits.maxConnections = try c.int(min: 1, max: 1_000_000) }
        if let r = l["min_fetch_rate"] { limits.minFetchRate = try r.byteSize() }
        if let g = l["fetch_rate_grace"] {
            limits.fetchRateGrace = try g.duration()
            guard limits.fetchRateGrace >= .seconds(1) else { throw g.invalid("must be at least 1s") }
        }
        return limits
    }

    /// Checks that a file named by `node` can be read now (it is read again when used).
    func readable(_ path: String, _ node: ConfigNode) throws(ConfigError) {
        do {
            _ = try readFile(path)
        } catch {
            throw ConfigError.unreadableSecretFile(path: path, key: node.path, line: node.line, reason: Self.reason(error))
        }
    }

    /// `registries.<key>.users`: the inbound users who may pull through this registry. Only
    /// meaningful with `auth:` (without it no request has a user), so a list without `auth`
    /// is refused rather than silently shutting everyone out.
    static func registryUsers(_ node: ConfigNode, authConfigured: Bool) throws(ConfigError) -> [String] {
        guard authConfigured else {
            throw node.invalid("lists inbound users, but auth is not configured: without auth no request has a user; add auth: {htpasswd: ...} or remove users")
        }
        let items = try node.sequence()
        guard !items.isEmpty else { throw node.invalid("an empty list lets nobody pull; list users, or remove the registry") }
        var users: [String] = []
        for item in items {
            let user = try item.nonEmptyString()
            guard !user.contains(":"), user.allSatisfy({ !$0.isWhitespace && !$0.isNewline }) else {
                throw item.invalid("'\(user)' is not an htpasswd user name (no ':' or spaces)")
            }
            guard !users.contains(user) else { throw item.invalid("user '\(user)' is listed twice") }
            users.append(user)
        }
        return users
    }
}
