extension GatewayConfig {
    /// A human-readable summary of where requests go, printed by `mirrorgate check` and logged at start-up.
    public var routingPlan: String {
        var lines: [String] = []
        lines.append("listen: \(listen)")
        lines.append("storage: \(storage.path) (max \(Self.formatBytes(storage.maxSize)))")
        lines.append("tags: ttl \(ConfigValues.format(tags.ttl)), serve_stale \(tags.serveStale)")
        lines.append("default registry: \(defaultRegistry)")
        lines.append("admin: \(adminListen.map { "\($0) (/healthz, /readyz, /metrics)" } ?? "on listen")")
        lines.append("log: \(log.format.rawValue), level \(log.level)")
        lines.append("tls: \(tls.map { "cert \($0.certificatePath), key \($0.keyPath)" } ?? "off (plain HTTP)")")
        lines.append("auth: \(auth.map { "htpasswd \($0.htpasswdPath), realm \($0.realm), at most \($0.maxFailures) failures per client address per \(ConfigValues.format($0.failureWindow))" } ?? "off (open to every client)")")
        lines.append("limits: header \(Self.formatBytes(UInt64(limits.maxHeaderSize))), idle \(ConfigValues.format(limits.idleTimeout)), send \(ConfigValues.format(limits.sendTimeout)), \(limits.maxConcurrentFetches) concurrent fetches, \(limits.maxConnections) connections")
        for registry in registries {
            lines.append("registry \(registry.key):")
            for (index, upstream) in registry.upstreams.enumerated() {
                var notes: [String] = []
                if !upstream.prefix.isEmpty { notes.append("prefix \(upstream.prefix)") }
                if upstream.username != nil { notes.append("credentials: \(upstream.username!)") }
                if let budget = upstream.budget { notes.append("budget \(budget.pulls)/\(ConfigValues.format(budget.window))") }
                if !upstream.resolve { notes.append("digests only") }
                if upstream.skipTLSVerify { notes.append("TLS not verified") }
                lines.append("  \(index + 1). \(upstream.name) \(upstream.url)" + (notes.isEmpty ? "" : " [\(notes.joined(separator: ", "))]"))
            }
        }
        return lines.joined(separator: "\n")
    }

    static func formatBytes(_ n: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = n
        var unit = 0
        while value >= 1024, value % 1024 == 0, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return "\(value)\(units[unit])"
    }
}
