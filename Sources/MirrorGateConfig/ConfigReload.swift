/// What re-reading `gateway.yaml` (SIGHUP) changes in a running gateway.
///
/// Only keys that are read per request or per pass can change safely without a restart:
/// ``reloadableKeys``. Every other difference keeps its running value and is reported, so the
/// log says what waits for a restart instead of the file and the gateway silently disagreeing.
public struct ConfigReload: Sendable, Equatable {
    /// The keys a reload applies at once (`<key>` is each registry's key).
    public static let reloadableKeys = ["registries.<key>.policy", "registries.<key>.users", "ledger.retention"]

    /// The configuration to run with from now on: the running one with every reloadable key
    /// taken from the file.
    public var config: GatewayConfig
    /// Key paths whose new values apply now.
    public var applied: [String] = []
    /// Key paths that differ in the file but keep their running values until a restart.
    public var needsRestart: [String] = []

    /// Compares the running configuration with the one just read from the file.
    public init(running: GatewayConfig, file: GatewayConfig) {
        config = running
        for registry in file.registries {
            guard let index = running.registries.firstIndex(where: { $0.key == registry.key }) else { continue }
            let current = running.registries[index]
            if current.policy != registry.policy {
                config.registries[index].policy = registry.policy
                applied.append("registries.\(registry.key).policy")
            }
            if current.users != registry.users {
                // Without auth running no request has a user: a new list would shut everyone out.
                if running.auth != nil {
                    config.registries[index].users = registry.users
                    applied.append("registries.\(registry.key).users")
                } else {
                    needsRestart.append("registries.\(registry.key).users")
                }
            }
            if current.upstreams != registry.upstreams { needsRestart.append("registries.\(registry.key).upstreams") }
        }
        if file.ledger.retention != running.ledger.retention {
            config.ledger.retention = file.ledger.retention
            applied.append("ledger.retention")
        }

        let runningKeys = running.registries.map(\.key)
        let fileKeys = file.registries.map(\.key)
        for key in fileKeys where !runningKeys.contains(key) { needsRestart.append("registries.\(key) (added)") }
        for key in runningKeys where !fileKeys.contains(key) { needsRestart.append("registries.\(key) (removed)") }
        if runningKeys.filter(fileKeys.contains) != fileKeys.filter(runningKeys.contains) { needsRestart.append("registries (order)") }

        func compare<T: Equatable>(_ key: String, _ path: KeyPath<GatewayConfig, T>) {
            if running[keyPath: path] != file[keyPath: path] { needsRestart.append(key) }
        }
        compare("listen", \.listen)
        compare("admin_listen", \.adminListen)
        compare("storage", \.storage)
        compare("tags", \.tags)
        compare("default_registry", \.defaultRegistry)
        compare("health", \.health)
        compare("log", \.log)
        compare("tls", \.tls)
        compare("auth", \.auth)
        compare("limits", \.limits)
        compare("shutdown", \.shutdown)
    }
}
