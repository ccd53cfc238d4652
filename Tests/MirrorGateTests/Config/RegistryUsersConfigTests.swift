import Foundation
import MirrorGateConfig
import Testing

/// `registries.<key>.users` and what `mirrorgate check` says about credentialed registries.
@Suite("Registry users")
struct RegistryUsersConfigTests {
    static func load(_ yaml: String) throws(ConfigError) -> GatewayConfig {
        let loader = ConfigLoader(environment: [:], readFile: { path in
            guard path == "/h" else { throw CocoaError(.fileReadNoSuchFile) }
            return "alice:x"
        })
        return try loader.load(yaml: yaml)
    }

    static func error(_ yaml: String) -> String {
        do {
            _ = try load(yaml)
            return "loaded"
        } catch {
            return error.description
        }
    }

    static let registries = """
        registries:
          private.example:
            users: [alice, bob]
            upstreams:
              - {name: cache, url: "https://cache.example", username: gw, password: pw}
          docker.io:
            upstreams:
              - {name: hub, url: "https://registry-1.docker.io", username: hubuser, password: pw}
          ghcr.io:
            upstreams:
              - url: https://ghcr.io
        """

    @Test func usersRestrictARegistry() throws {
        let config = try Self.load("auth: {htpasswd: /h}\n" + Self.registries)
        #expect(config.registry("private.example")?.users == ["alice", "bob"])
        #expect(config.registry("docker.io")?.users == nil)
        let plan = config.routingPlan
        #expect(plan.contains("registry private.example:\n  access: alice, bob only (registries.private.example.users)"), "\(plan)")
        #expect(plan.contains("registry docker.io:\n  access: every authenticated user\n  warning: hub (as hubuser) pulls with credentials: every htpasswd user can read whatever those credentials can read; list registries.docker.io.users to restrict it"), "\(plan)")
        #expect(plan.contains("registry ghcr.io:\n  access: every authenticated user\n  1."), "a registry without credentials got a warning: \(plan)")
    }

    @Test func withoutAuthTheExposureIsEveryClient() throws {
        let config = try Self.load("""
            registries:
              docker.io:
                upstreams:
                  - {name: hub, url: "https://registry-1.docker.io", username: hubuser, password: pw}
            """)
        #expect(config.routingPlan.contains("access: every client (auth is off)"))
        #expect(config.exposure(of: config.registries[0])
            == "hub (as hubuser) pulls with credentials: every client that can reach this gateway (auth is off) can read whatever those credentials can read; turn on auth and list registries.docker.io.users to restrict it")
    }

    @Test(arguments: [
        ("", "users: [alice]", "registries.private.example.users (line 3)", "auth is not configured"),
        ("auth: {htpasswd: /h}\n", "users: []", "registries.private.example.users (line 4)", "lets nobody pull"),
        ("auth: {htpasswd: /h}\n", "users: [alice, alice]", "registries.private.example.users[1] (line 4)", "listed twice"),
        ("auth: {htpasswd: /h}\n", "users: ['a:b']", "registries.private.example.users[0] (line 4)", "not an htpasswd user name"),
        ("auth: {htpasswd: /h}\n", "users: alice", "registries.private.example.users (line 4)", "list"),
    ])
    func badUsersNameTheKey(_ auth: String, _ users: String, _ key: String, _ message: String) {
        let text = Self.error(auth + """
            registries:
              private.example:
                \(users)
                upstreams:
                  - url: https://cache.example
            """)
        #expect(text.hasPrefix(key), "\(text)")
        #expect(text.contains(message), "\(text)")
    }
}
