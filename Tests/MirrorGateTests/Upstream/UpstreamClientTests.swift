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

    @Test func maxRedirectsIsFive() {
        #expect(UpstreamClient.maxRedirects == 5)
    }
}
