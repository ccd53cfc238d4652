import MirrorGateConfig
@testable import MirrorGateUpstream
import Testing

@Suite("UpstreamClient")
struct UpstreamClientTests {
    static func upstream(_ url: String) throws -> Upstream {
        let config = try ConfigLoader(environment: [:]).load(yaml: """
            registries:
              docker.io:
                upstreams:
                  - url: \(url)
                    username: u
                    password: p
            """)
        return Upstream(registry: "docker.io", config: config.registries[0].upstreams[0])
    }

    /// An https upstream's credentials never go to an http realm; an http upstream's realm
    /// may be http (a local registry), and https is always fine.
    @Test func credentialsOfAnHTTPSUpstreamNeverGoOverHTTP() throws {
        let secure = try Self.upstream("https://registry.example.com")
        #expect(UpstreamClient.realmDowngrades(realmScheme: "http", upstream: secure))
        #expect(UpstreamClient.realmDowngrades(realmScheme: "HTTP", upstream: secure))
        #expect(!UpstreamClient.realmDowngrades(realmScheme: "https", upstream: secure))
        let plain = try Self.upstream("http://127.0.0.1:5000")
        #expect(!UpstreamClient.realmDowngrades(realmScheme: "http", upstream: plain))
        #expect(!UpstreamClient.realmDowngrades(realmScheme: "https", upstream: plain))
    }

    static func upstream(_ url: String, authHosts: [String]) throws -> Upstream {
        let config = try ConfigLoader(environment: [:]).load(yaml: """
            registries:
              docker.io:
                upstreams:
                  - url: \(url)
                    username: u
                    password: p
                    auth_hosts: [\(authHosts.joined(separator: ", "))]
            """)
        return Upstream(registry: "docker.io", config: config.registries[0].upstreams[0])
    }

    /// Security review, finding 12: the realm rule was "same host or same last two labels",
    /// weaker than the redirect rule. It is the upstream's origin, `auth_hosts`, or a
    /// well-known pair.
    @Test func credentialsGoOnlyToTheUpstreamsOriginAuthHostsOrAWellKnownRealm() throws {
        let hub = try Self.upstream("https://registry-1.docker.io", authHosts: ["login.example.com"])
        let may = { (realm: String) in UpstreamClient.realmMayReceiveCredentials(realm: realm, upstream: hub) }
        #expect(may("https://registry-1.docker.io/token"))
        #expect(may("https://Registry-1.Docker.IO:443/token"))
        #expect(may("https://auth.docker.io/token"))
        #expect(may("https://login.example.com/token"))
        #expect(may("http://login.example.com:8080/token"))  // listed hosts: any port (the https rule still applies)
        #expect(!may("http://auth.docker.io/token"))
        #expect(!may("https://auth.docker.io:8443/token"))
        #expect(!may("https://registry-1.docker.io:8443/token"))
        #expect(!may("http://registry-1.docker.io/token"))
        #expect(!may("https://docker.io/token"))
        #expect(!may("https://evil.docker.io/token"))
        #expect(!may("https://docker.io.evil.net/token"))
        #expect(!may("https://auth.docker.io@evil.net/token"))
        #expect(!may("not a url"))

        // The same host on another port is another service.
        let local = try Self.upstream("http://127.0.0.1:19010", authHosts: [])
        #expect(UpstreamClient.realmMayReceiveCredentials(realm: "http://127.0.0.1:19010/token", upstream: local))
        #expect(!UpstreamClient.realmMayReceiveCredentials(realm: "http://127.0.0.1:19011/token", upstream: local))
        #expect(!UpstreamClient.realmMayReceiveCredentials(realm: "http://127.0.0.2:19010/token", upstream: local))
        // The last two labels are no registrable domain.
        let tenant = try Self.upstream("https://x.co.uk", authHosts: [])
        #expect(!UpstreamClient.realmMayReceiveCredentials(realm: "https://evil.co.uk/token", upstream: tenant))
        let shared = try Self.upstream("https://alice.github.io", authHosts: [])
        #expect(!UpstreamClient.realmMayReceiveCredentials(realm: "https://mallory.github.io/token", upstream: shared))
        // A well-known pair needs the well-known upstream over https on its default port.
        let plainHub = try Self.upstream("http://registry-1.docker.io", authHosts: [])
        #expect(!UpstreamClient.realmMayReceiveCredentials(realm: "https://auth.docker.io/token", upstream: plainHub))
        let gitlab = try Self.upstream("https://registry.gitlab.com", authHosts: [])
        #expect(UpstreamClient.realmMayReceiveCredentials(realm: "https://gitlab.com/jwt/auth", upstream: gitlab))
        #expect(!UpstreamClient.realmMayReceiveCredentials(realm: "https://auth.docker.io/token", upstream: gitlab))
    }

    @Test func maxRedirectsIsFive() {
        #expect(UpstreamClient.maxRedirects == 5)
    }
}
