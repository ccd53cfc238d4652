extension GatewayConfig {
    /// A human-readable summary of where requests go, printed by `mirrorgate check` and logged at start-up.
    public var routingPlan: String {
        var lines: [String] = []
        lines.append("listen: \(listen)")
        let sizes = "max \(Self.formatBytes(storage.maxSize)), blobs up to \(Self.formatBytes(storage.maxBlobSize))"
        if let s3 = storage.s3 {
            // The access key ID names the key for whoever reads a 403; the secret is never shown.
            lines.append("storage: s3 bucket \(s3.bucket) at \(s3.endpoint) (\(sizes))")
            lines.append("  region \(s3.region), prefix \"\(s3.prefix)\", \(s3.pathStyle ? "path-style" : "virtual-host style") URLs, access key \(s3.accessKeyID)")
            lines.append("  cached blob GETs: " + (s3.redirect ? "307 to a presigned URL of the object" : "streamed by the gateway"))
            lines.append("  in-flight fetches and metadata: \(storage.path)")
        } else {
            lines.append("storage: \(storage.path) (\(sizes))")
        }
        lines.append("tags: refresh_after \(ConfigValues.format(tags.refreshAfter)) (then revalidated in the background), ttl \(ConfigValues.format(tags.ttl)), serve_stale \(tags.serveStale)")
        lines.append("default registry: \(defaultRegistry)")
        lines.append("admin: \(adminListen.map { "\($0) (/healthz, /readyz, /metrics)" } ?? "on listen")")
        lines.append("log: \(log.format.rawValue), level \(log.level)")
        lines.append("tls: \(tls.map { "cert \($0.certificatePath), key \($0.keyPath)" } ?? "off (plain HTTP)")")
        lines.append("auth: \(auth.map { "htpasswd \($0.htpasswdPath), realm \($0.realm), at most \($0.maxFailures) failures per client address per \(ConfigValues.format($0.failureWindow))" } ?? "off (open to every client)")")
        lines.append("limits: header \(Self.formatBytes(UInt64(limits.maxHeaderSize))), idle \(ConfigValues.format(limits.idleTimeout)), send \(ConfigValues.format(limits.sendTimeout)), \(limits.maxConcurrentFetches) concurrent fetches, \(limits.maxConnections) connections, fetches below \(Self.formatBytes(limits.minFetchRate))/s for \(ConfigValues.format(limits.fetchRateGrace)) fail over")
        lines.append(metadataLine)
        if let cluster {
            lines.append("cluster: peers served on \(cluster.peerListen), advertised as \(cluster.advertiseURL), token from \(cluster.peerTokenFile)")
        }
        lines.append("ledger: every client manifest request kept \(ConfigValues.format(ledger.retention)) (hourly roll-ups after 25h)")
        lines.append("shutdown: /readyz fails at once, connections accepted for \(ConfigValues.format(shutdown.grace)), then in-flight responses drain for at most \(ConfigValues.format(shutdown.drainTimeout))")
        for registry in registries {
            lines.append("registry \(registry.key):")
            lines.append("  access: " + (registry.users.map { "\($0.joined(separator: ", ")) only (registries.\(registry.key).users)" }
                ?? (auth == nil ? "every client (auth is off)" : "every authenticated user")))
            if let exposure = exposure(of: registry) { lines.append("  warning: " + exposure) }
            if let policy = registry.policy { lines.append("  policy: \(policy.summary) (registries.\(registry.key).policy)") }
            for (index, upstream) in registry.upstreams.enumerated() {
                var notes: [String] = []
                if !upstream.prefix.isEmpty { notes.append("prefix \(upstream.prefix)") }
                if upstream.username != nil { notes.append("credentials: \(upstream.username!)") }
                if let budget = upstream.budget { notes.append("budget \(budget.pulls)/\(ConfigValues.format(budget.window))") }
                if !upstream.resolve { notes.append("digests only") }
                if upstream.skipTLSVerify { notes.append("TLS not verified") }
                if !upstream.authHosts.isEmpty { notes.append("token realms also on: \(upstream.authHosts.joined(separator: ", "))") }
                if !upstream.redirectHosts.isEmpty { notes.append("may redirect to: \(upstream.redirectHosts.joined(separator: ", "))") }
                lines.append("  \(index + 1). \(upstream.name) \(upstream.url)" + (notes.isEmpty ? "" : " [\(notes.joined(separator: ", "))]"))
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Where the metadata lives (never a password).
    var metadataLine: String {
        guard metadata.backend == .postgres, let pg = metadata.postgres else {
            return "metadata: sqlite (\(storage.path)/metadata.sqlite, this replica only)"
        }
        let password = pg.passwordFile.map { "password from \($0)" } ?? (pg.password == nil ? "no password" : "password set")
        return "metadata: postgres \(pg.url) (shared by every replica; pool of \(pg.poolSize), \(password))"
    }

    /// What an unrestricted registry with credentialed upstreams gives away, or nil: the
    /// gateway pulls with those credentials for whoever asks, so everyone who may use the
    /// registry reads whatever the credentials can read (a confused deputy by design).
    public func exposure(of registry: RegistryConfig) -> String? {
        guard registry.users == nil else { return nil }
        let credentialed = registry.upstreams.filter { $0.username != nil }
        guard !credentialed.isEmpty else { return nil }
        let who = auth == nil ? "every client that can reach this gateway (auth is off)" : "every htpasswd user"
        let names = credentialed.map { "\($0.name) (as \($0.username!))" }.joined(separator: ", ")
        return "\(names) pull\(credentialed.count == 1 ? "s" : "") with credentials: \(who) can read whatever those credentials can read"
            + (auth == nil ? "; turn on auth and list registries.\(registry.key).users to restrict it" : "; list registries.\(registry.key).users to restrict it")
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
