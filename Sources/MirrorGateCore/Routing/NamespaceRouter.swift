import MirrorGateConfig
import RegistryModel

/// Maps a request to the registry it is for and the repository name within it, so one
/// endpoint serves every client:
/// - containerd sends `?ns=<registry>` (`/v2/library/alpine/manifests/latest?ns=docker.io`);
/// - CRI-O and containers/image mirrors with a path send the registry key as the first
///   component (`/v2/ghcr.io/org/app/...`);
/// - dockerd `registry-mirrors` sends bare Docker Hub names (`/v2/library/alpine/...`),
///   which go to `default_registry`.
///
/// Single-component Docker Hub names get `library/` (`alpine` = `library/alpine`).
public struct NamespaceRouter: Sendable {
    public let registryKeys: Set<String>
    public let defaultRegistry: String

    public init(config: GatewayConfig) {
        self.registryKeys = Set(config.registries.map(\.key))
        self.defaultRegistry = config.defaultRegistry
    }

    public init(registryKeys: Set<String>, defaultRegistry: String) {
        self.registryKeys = registryKeys
        self.defaultRegistry = defaultRegistry
    }

    /// The registry and validated repository name of a request.
    public func route(repository components: [Substring], namespace: String?) throws(RegistryError) -> (registry: String, name: RepositoryName) {
        var components = components
        let registry: String
        if let namespace, !namespace.isEmpty {
            let ns = RegistryHost.canonical(namespace.lowercased())
            guard registryKeys.contains(ns) else {
                throw RegistryError(.nameUnknown, "registry '\(namespace.prefix(100))' is not configured on this gateway")
            }
            registry = ns
        } else if components.count > 1, registryKeys.contains(RegistryHost.canonical(String(components[0]))) {
            registry = RegistryHost.canonical(String(components[0]))
            components.removeFirst()
        } else if defaultRegistry == RegistryHost.dockerHub, components.count > 1, RegistryHost.looksLikeHost(components[0]) {
            // CRI-O mirrors name the registry first (`/v2/quay.io/org/app`). Docker Hub
            // namespaces never contain a dot or a colon, so this is a registry that is not
            // configured, not a Hub repository to look up there.
            throw RegistryError(.nameUnknown, "registry '\(components[0].prefix(100))' is not configured on this gateway")
        } else {
            registry = defaultRegistry
        }
        components = RegistryHost.repositoryComponents(components, registry: registry)
        guard !components.isEmpty else { throw RegistryError(.nameInvalid, "repository name is empty") }
        return (registry, try RepositoryName(components: components))
    }
}
