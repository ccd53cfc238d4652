import MirrorGateConfig
@testable import MirrorGateCore
import RegistryModel
import Testing

@Suite("NamespaceRouter")
struct NamespaceRouterTests {
    static let router = NamespaceRouter(registryKeys: ["docker.io", "ghcr.io", "registry.local:5000"], defaultRegistry: "docker.io")

    static func components(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: false)
    }

    static func route(_ path: String, ns: String? = nil, router: NamespaceRouter = router) throws(RegistryError) -> (String, String) {
        let (registry, name) = try router.route(repository: components(path), namespace: ns)
        return (registry, name.value)
    }

    @Test(arguments: [
        // containerd: ?ns=
        ("alpine", "docker.io", "docker.io", "library/alpine"),
        ("library/alpine", "docker.io", "docker.io", "library/alpine"),
        ("bitnami/redis", "docker.io", "docker.io", "bitnami/redis"),
        ("org/app", "ghcr.io", "ghcr.io", "org/app"),
        ("app", "ghcr.io", "ghcr.io", "app"),  // library/ is Docker Hub only
        ("alpine", "index.docker.io", "docker.io", "library/alpine"),
        ("alpine", "registry-1.docker.io", "docker.io", "library/alpine"),
        ("alpine", "registry.hub.docker.com", "docker.io", "library/alpine"),
        ("alpine", "Docker.IO", "docker.io", "library/alpine"),
        ("team/app", "registry.local:5000", "registry.local:5000", "team/app"),
        // ns names the registry even when the first component looks like another key.
        ("ghcr.io/org/app", "docker.io", "docker.io", "ghcr.io/org/app"),
    ])
    func namespaceParameter(_ path: String, _ ns: String, _ registry: String, _ name: String) throws {
        let routed = try Self.route(path, ns: ns)
        #expect(routed.0 == registry)
        #expect(routed.1 == name)
    }

    @Test(arguments: [
        // registry key as the first component (CRI-O, containers/image)
        ("ghcr.io/org/app", "ghcr.io", "org/app"),
        ("ghcr.io/app", "ghcr.io", "app"),
        ("registry.local:5000/team/app", "registry.local:5000", "team/app"),
        ("docker.io/alpine", "docker.io", "library/alpine"),
        ("docker.io/library/alpine", "docker.io", "library/alpine"),
        ("docker.io/bitnami/redis", "docker.io", "bitnami/redis"),
        ("index.docker.io/alpine", "docker.io", "library/alpine"),
        ("registry-1.docker.io/library/alpine", "docker.io", "library/alpine"),
        // no ns and no key: default registry (dockerd registry-mirrors)
        ("alpine", "docker.io", "library/alpine"),
        ("library/alpine", "docker.io", "library/alpine"),
        ("bitnami/redis", "docker.io", "bitnami/redis"),
        // a single component that is a key is a repository, not a registry
        ("ghcr.io", "docker.io", "library/ghcr.io"),
    ])
    func pathRouting(_ path: String, _ registry: String, _ name: String) throws {
        for ns in [nil, ""] as [String?] {
            let routed = try Self.route(path, ns: ns)
            #expect(routed.0 == registry)
            #expect(routed.1 == name)
        }
    }

    @Test func defaultRegistryOtherThanDockerHub() throws {
        let router = NamespaceRouter(registryKeys: ["ghcr.io", "docker.io"], defaultRegistry: "ghcr.io")
        let bare = try Self.route("app", router: router)
        #expect(bare.0 == "ghcr.io")
        #expect(bare.1 == "app")
        let hub = try Self.route("docker.io/alpine", router: router)
        #expect(hub.0 == "docker.io")
        #expect(hub.1 == "library/alpine")
    }

    @Test func unknownNamespaceIsNameUnknown() {
        let error = #expect(throws: RegistryError.self) { try Self.route("alpine", ns: "quay.io") }
        #expect(error?.code == .nameUnknown)
        #expect(error?.status == 404)
        #expect(error?.message.contains("quay.io") == true)
    }

    /// A registry key that is not configured, in CRI-O's path form, is not sent to Docker Hub
    /// as a repository named after the host.
    @Test(arguments: ["quay.io/org/app", "registry.k8s.io/pause", "localhost:5000/app", "localhost/app"])
    func unconfiguredRegistryInThePathIsNameUnknown(_ path: String) {
        let error = #expect(throws: RegistryError.self) { try Self.route(path) }
        #expect(error?.code == .nameUnknown)
        #expect(error?.message.contains("is not configured") == true)
    }

    @Test func hostileNamespaceIsTruncatedInMessage() {
        let ns = String(repeating: "x", count: 5000)
        let error = #expect(throws: RegistryError.self) { try Self.route("alpine", ns: ns) }
        #expect(error?.code == .nameUnknown)
        #expect((error?.message.count ?? 0) < 300)
    }

    @Test(arguments: ["../etc", "a/../b", "%2e%2e", "A", "a//b", "a/", "a___b", "-a", "ghcr.io/../x", "ghcr.io/Org/app",
                      "docker.io/..", String(repeating: "a", count: 256)])
    func invalidNamesAreRejected(_ path: String) {
        for ns in [nil, "docker.io", "ghcr.io"] as [String?] {
            let error = #expect(throws: RegistryError.self) { try Self.route(path, ns: ns) }
            #expect(error?.code == .nameInvalid)
            #expect(error?.status == 400)
        }
    }

    @Test func emptyRepositoryIsRejected() {
        let error = #expect(throws: RegistryError.self) { try Self.router.route(repository: [], namespace: nil) }
        #expect(error?.code == .nameInvalid)
        let error2 = #expect(throws: RegistryError.self) { try Self.router.route(repository: [], namespace: "ghcr.io") }
        #expect(error2?.code == .nameInvalid)
    }

    @Test func initFromConfig() throws {
        let config = try ConfigLoader(environment: [:]).load(yaml: """
            default_registry: ghcr.io
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
              ghcr.io:
                upstreams:
                  - url: https://ghcr.io
            """)
        let router = NamespaceRouter(config: config)
        #expect(router.registryKeys == ["docker.io", "ghcr.io"])
        #expect(router.defaultRegistry == "ghcr.io")
    }

    @Test func canonicalRegistry() {
        #expect(RegistryHost.canonical("index.docker.io") == "docker.io")
        #expect(RegistryHost.canonical("registry-1.docker.io") == "docker.io")
        #expect(RegistryHost.canonical("registry.hub.docker.com") == "docker.io")
        #expect(RegistryHost.canonical("docker.io") == "docker.io")
        #expect(RegistryHost.canonical("ghcr.io") == "ghcr.io")
    }
}
