import MirrorGateConfig
@testable import MirrorGateUpstream
import Testing

/// Tokens are found only for the upstream, and the credential, they were obtained for
/// (security review, finding 1).
@Suite("TokenCache")
struct TokenCacheTests {
    static func upstream(registry: String, name: String = "mirror", url: String, user: String? = nil) throws -> Upstream {
        let credentials = user.map { "\n        username: \($0)\n        password: pw" } ?? ""
        let config = try ConfigLoader(environment: [:]).load(yaml: """
            registries:
              \(registry):
                upstreams:
                  - name: \(name)
                    url: \(url)\(credentials)
            """)
        return Upstream(registry: registry, config: config.registries[0].upstreams[0])
    }

    static let realm = "https://auth.example/token"

    @Test func upstreamsOfTheSameNameInOtherRegistriesShareNothing() async throws {
        let victim = try Self.upstream(registry: "tok.test", url: "https://private.example", user: "gwuser")
        let hostile = try Self.upstream(registry: "evil.test", url: "https://private.example", user: "gwuser")
        #expect(victim.name == hostile.name)
        #expect(victim.id != hostile.id)
        #expect(victim.id.description == "tok.test/mirror")
        let cache = TokenCache()
        let scope = "repository:privorg/app:pull"
        await cache.store("secret", lifetime: .seconds(300), for: .init(upstream: victim, realm: Self.realm, service: "s", scope: scope))
        #expect(await cache.token(for: .init(upstream: victim, realm: Self.realm, service: "s", scope: scope)) == "secret")
        // Same name, same URL, same user, same realm: still another upstream.
        #expect(await cache.token(for: .init(upstream: hostile, realm: Self.realm, service: "s", scope: scope)) == nil)
    }

    @Test(arguments: [
        ("https://private.example:8443", "gwuser"),  // the default name ignores the port
        ("https://other.example", "gwuser"),
        ("https://private.example", "someone-else"),
        ("https://private.example", nil),
    ] as [(String, String?)])
    func anotherOriginOrUserOfTheSameUpstreamFindsNoToken(url: String, user: String?) async throws {
        let before = try Self.upstream(registry: "tok.test", url: "https://private.example", user: "gwuser")
        let after = try Self.upstream(registry: "tok.test", url: url, user: user)
        #expect(before.id == after.id)
        let cache = TokenCache()
        await cache.store("secret", lifetime: .seconds(300), for: .init(upstream: before, realm: Self.realm, service: "s", scope: ""))
        #expect(await cache.token(for: .init(upstream: after, realm: Self.realm, service: "s", scope: "")) == nil)
    }

    @Test func defaultNamesCollideAcrossPortsButIDsDoNot() throws {
        let a = try ConfigLoader(environment: [:]).load(yaml: """
            registries:
              a.test: {upstreams: [{url: "https://harbor.corp"}]}
              b.test: {upstreams: [{url: "https://harbor.corp:8443"}]}
            """)
        let ids = a.registries.map { Upstream(registry: $0.key, config: $0.upstreams[0]) }
        #expect(ids[0].name == ids[1].name)
        #expect(ids[0].id != ids[1].id)
    }
}
