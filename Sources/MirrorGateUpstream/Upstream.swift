import MirrorGateConfig

/// One upstream of one registry, as the router hands it to the fetch path.
public struct Upstream: Sendable, Equatable, CustomStringConvertible {
    /// Which upstream this is: its registry key and its configured name. Names are unique only
    /// within a registry, so every per-upstream map (health, budgets, tokens, realms, metrics)
    /// is keyed by this, never by the name alone.
    public struct ID: Hashable, Sendable, CustomStringConvertible {
        /// The registry key clients pull from (`docker.io`).
        public let registry: String
        /// The upstream's configured name (`hub-anonymous`).
        public let name: String

        public init(registry: String, name: String) {
            self.registry = registry
            self.name = name
        }

        /// `registry/name`, e.g. `docker.io/hub`.
        public var description: String { "\(registry)/\(name)" }
    }

    /// The registry key clients pull from (`docker.io`).
    public let registry: String
    public let config: UpstreamConfig

    public init(registry: String, config: UpstreamConfig) {
        self.registry = registry
        self.config = config
    }

    /// This upstream among every registry's upstreams.
    public var id: ID { ID(registry: registry, name: config.name) }
    public var name: String { config.name }
    public var description: String { "\(config.name) (\(config.url))" }

    /// The repository path on this upstream for a client's repository name.
    public func remoteName(_ repository: String) -> String {
        config.prefix.isEmpty ? repository : config.prefix + "/" + repository
    }
}
