import MirrorGateConfig
@testable import MirrorGateHTTP
import RegistryModel
import Testing

@Suite("RegistryAccess")
struct RegistryAccessTests {
    static let access = RegistryAccess(config: GatewayConfig(
        listen: .init(host: "127.0.0.1", port: 5000), storage: .init(path: "/tmp/x", maxSize: 1 << 30),
        tags: .init(ttl: .seconds(60), serveStale: true), defaultRegistry: "docker.io",
        health: .init(interval: .seconds(15), timeout: .seconds(2), failureThreshold: 3),
        registries: [
            RegistryConfig(key: "docker.io", upstreams: []),
            RegistryConfig(key: "private.example", upstreams: [], users: ["alice"]),
        ],
        auth: InboundAuthConfig(htpasswdPath: "/h")))

    @Test func unrestrictedRegistriesAreOpenToEveryUser() throws {
        try Self.access.check(user: "bob", registry: "docker.io")
        try Self.access.check(user: nil, registry: "docker.io")
    }

    @Test func restrictedRegistriesDenyOthersNamingRegistryAndUser() throws {
        try Self.access.check(user: "alice", registry: "private.example")
        do {
            try Self.access.check(user: "bob", registry: "private.example")
            Issue.record("bob was let through")
        } catch {
            #expect(error.code == .denied)
            #expect(error.status == 403)
            #expect(error.message == "user 'bob' may not pull from registry 'private.example' (not in registries.private.example.users)")
        }
        #expect(throws: RegistryError.self) { try Self.access.check(user: nil, registry: "private.example") }
    }
}
