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
            let ns = Self.canonicalRegistry(namespace.lowercased())
            guard registryKeys.contains(ns) else {
                throw RegistryError(.nameUnknown, "registry '\(namespace.prefix(100))' is not configured on this gateway")
            }
            registry = ns
        } else if components.count > 1, registryKeys.contains(Self.canonicalRegistry(String(components[0]))) {
            registry = Self.canonicalRegistry(String(components[0]))
            components.removeFirst()
        } else if defaultRegistry == "docker.io", components.count > 1, Self.looksLikeHost(components[0]) {
            // CRI-O mirrors name the registry first (`/v2/quay.io/org/app`). Docker Hub
            // namespaces never contain a dot or a colon, so this is a registry that is not
            // configured, not a Hub repository to look up there.
            throw RegistryError(.nameUnknown, "registry '\(components[0].prefix(100))' is not configured on this gateway")
        } else {
            registry = defaultRegistry
        }
        if registry == "docker.io", components.count == 1 {
            components.insert("library", at: 0)
        }
        guard !components.isEmpty else { throw RegistryError(.nameInvalid, "repository name is empty") }
        return (registry, try RepositoryName(components: components))
    }

    /// A first path component that names a host, as a Docker reference's domain does: it has a
    /// dot or a port, or is `localhost`.
    static func looksLikeHost(_ component: Substring) -> Bool {
        var host = component
        if let colon = component.lastIndex(of: ":") {
            let port = component[component.index(after: colon)...]
            guard !port.isEmpty, port.count <= 5, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber) else { return false }
            host = component[..<colon]
        } else if !component.contains("."), component != "localhost" {
            return false
        }
        return !host.isEmpty && host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
        }
    }

    /// Docker Hub's other spellings name the same registry.
    static func canonicalRegistry(_ host: String) -> String {
        switch host {
        case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com": "docker.io"
        default: host
        }
    }
}
