import MirrorGateConfig
import RegistryModel

/// Which inbound users may pull through which registry (`registries.<key>.users`).
///
/// Checked right after a request is routed to its registry, before the cache or any upstream
/// is touched: a registry whose upstreams pull with credentials would otherwise give every
/// client whatever those credentials can read.
public struct RegistryAccess: Sendable, Equatable {
    /// Allowed users per restricted registry; registries not listed are open to every user.
    public let allowed: [String: Set<String>]

    public init(config: GatewayConfig) {
        var allowed: [String: Set<String>] = [:]
        for registry in config.registries {
            if let users = registry.users { allowed[registry.key] = Set(users) }
        }
        self.allowed = allowed
    }

    public init(allowed: [String: Set<String>]) {
        self.allowed = allowed
    }

    /// Throws 403 `DENIED` when `user` may not pull through `registry`.
    public func check(user: String?, registry: String) throws(RegistryError) {
        guard let users = allowed[registry] else { return }
        guard let user else {
            throw RegistryError(.denied, "registry '\(registry)' is open only to the users in registries.\(registry).users; this request has none")
        }
        guard users.contains(user) else {
            throw RegistryError(.denied, "user '\(user)' may not pull from registry '\(registry)' (not in registries.\(registry).users)")
        }
    }
}
