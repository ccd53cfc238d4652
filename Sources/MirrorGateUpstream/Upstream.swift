import MirrorGateConfig

/// One upstream of one registry, as the router hands it to the fetch path.
public struct Upstream: Sendable, Equatable, CustomStringConvertible {
    /// The registry key clients pull from (`docker.io`).
    public let registry: String
    public let config: UpstreamConfig

    public init(registry: String, config: UpstreamConfig) {
        self.registry = registry
        self.config = config
    }

    public var name: String { config.name }
    public var description: String { "\(config.name) (\(config.url))" }

    /// The repository path on this upstream for a client's repository name.
    public func remoteName(_ repository: String) -> String {
        config.prefix.isEmpty ? repository : config.prefix + "/" + repository
    }
}
