import Foundation
import Testing

/// A token or credential goes only to the upstream, and for the credential, it was obtained
/// for (security review, findings 1 and 12). The victim is a real token-auth registry
/// (`docker-registry` with ``TokenIssuer``) holding a private repository; the attacker is
/// ``HostileUpstream`` configured under another registry key, which logs every
/// `Authorization` it receives.
@Suite(.serialized)
struct CredentialIsolationTests {
    static let user = "gwuser"
    static let password = "gw-private-password"
    static let accept = [("Accept", "application/vnd.oci.image.manifest.v1+json")]

    /// Finding 1: `tok.test` and `evil.test` both have an upstream named `mirror`. After a pull
    /// of `privorg/app` through `tok.test` (a token for `gwuser`), the same path through
    /// `evil.test` never carries that token: not at the first hop (the collision of names), and
    /// not when the hostile upstream names the victim's realm in its own challenge (it gets a
    /// token of its own, asked for anonymously).
    @Test func aTokenNeverReachesAnotherRegistrysUpstreamOfTheSameName() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [4096])
        let skopeo = try Skopeo.locate()
        let cleanup = ProcessCleanup()
        do {
            let tok = try await TokenAuthRegistry.start(users: [.init(Self.user, password: Self.password)])
            cleanup.add { await tok.stop() }
            try await skopeo.push(fixture, to: tok.hostPort, repository: "privorg/app", credentials: .init(user: Self.user, password: Self.password))
            let hostile = try await HostileUpstream.start()
            cleanup.add { await hostile.stop() }

            var config = GatewayConfig(defaultRegistry: "tok.test")
            config.registries = [
                .init(key: "tok.test", upstreams: [.init(name: "mirror", url: tok.url, extra: [
                    "username: \(Self.user)", "password: \(Self.password)", "auth_hosts: [\(tok.issuer.host)]",
                ])]),
                .init(key: "evil.test", upstreams: [.init(name: "mirror", url: hostile.url)]),
            ]
            let gateway = try await GatewayProcess.start(config)
            cleanup.add { await gateway.stop() }
            let path = "\(gateway.url)/v2/privorg/app/manifests/v1"

            let victim = try await HTTPFetch.get(path + "?ns=tok.test", headers: Self.accept)
            #expect(victim.status == 200, "\(victim.text)")
            #expect(tok.issuer.tokenRequests().contains { $0.user == Self.user && $0.status == 200 })

            // The same repository through the other registry: the hostile upstream answers 404.
            let first = try await HTTPFetch.get(path + "?ns=evil.test", headers: Self.accept)
            #expect(first.status == 404, "\(first.text)")

            // Now it challenges with the victim's realm and service, as if it were that upstream.
            try await tok.issuer.clearRequests()
            try await hostile.configure("""
                {"routes": {"privorg": "realm"},
                 "modes": {"realm": {"realm": "\(tok.realm)", "service": "\(tok.issuer.service)", "authorized": "notfound"}}}
                """)
            let second = try await HTTPFetch.get(path + "?ns=evil.test", headers: Self.accept)
            #expect(second.status == 404, "\(second.text)")
            // It had to ask for a token itself, without credentials, and got one granting nothing.
            let asked = tok.issuer.tokenRequests()
            #expect(!asked.isEmpty && asked.allSatisfy { $0.user == nil && $0.authorization == nil }, "\(asked)")

            let received = hostile.upstreamRequests().filter { $0.path.hasPrefix("/v2/privorg/") }
            #expect(received.count >= 3, "\(received)")
            for request in received {
                guard let authorization = request.authorization else { continue }
                #expect(authorization.hasPrefix("Bearer "), "\(request)")
                let claims = TokenIssuer.TokenClaims(jwt: String(authorization.dropFirst("Bearer ".count)))
                #expect(claims?.subject == "", "the hostile upstream got a token for \(claims?.subject ?? "?"): \(request)")
                #expect(claims?.access.allSatisfy { !$0.hasSuffix(":pull") } ?? true, "\(request)")
            }
            #expect(received.contains { $0.authorization?.hasPrefix("Bearer ") == true }, "the challenge was never answered: \(received)")
            #expect(!hostile.rawLog().contains(Self.password))
        } catch {
            await cleanup.run()
            throw error
        }
        await cleanup.run()
    }

    /// Finding 12: a hostile upstream holding credentials names a realm on another port of its
    /// own host. The password is not posted there: the token is asked for anonymously (as a
    /// redirect to another port gets no `Authorization`, OutboundSafetyTests).
    @Test func credentialsNeverGoToARealmOnAnotherPortOfTheSameHost() async throws {
        let password = "S3CRET-HOSTILE-PW"
        try await HostileUpstream.with(host: "127.0.0.1", internalHost: "127.0.0.1") { hostile in
            #expect(hostile.internalPort != hostile.port)
            var config = GatewayConfig(defaultRegistry: "evil.test")
            config.registries = [.init(key: "evil.test", upstreams: [
                .init(name: "hostile", url: hostile.url, extra: ["username: ucred", "password: \(password)"]),
            ])]
            try await GatewayProcess.with(config) { gateway in
                let answer = try await HTTPFetch.get("\(gateway.url)/v2/realm/x/manifests/v1", headers: Self.accept)
                #expect(answer.status == 502, "\(answer.text)")
                let asked = hostile.internalRequests().filter { $0.path.hasPrefix("/token") }
                #expect(!asked.isEmpty, "the realm was never asked")
                #expect(asked.allSatisfy { $0.method == "GET" && $0.authorization == nil && !$0.body.contains(password) }, "\(asked)")
                #expect(!hostile.rawLog().contains(password))
                #expect(gateway.logText().contains("refusing to send credentials to a token realm on a foreign host"))
            }
        }
    }
}
