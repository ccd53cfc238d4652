import Foundation
import Testing

/// A hostile upstream cannot make the gateway fetch from its own network (security review,
/// finding 5): redirects and token realms that lead to loopback, link-local or private
/// addresses are refused unless they are the upstream's own address or their host is listed
/// for it (`redirect_hosts`, `auth_hosts`), and every realm failure reads the same.
///
/// The world of the test suite is loopback, so the rule is the strict one: the hostile
/// upstream listens on 127.0.0.2, the internal service it aims at on 127.0.0.1 (also reached
/// by the name `localhost`). `evil.test` lists nothing; `listed.test`, the same upstream,
/// lists the internal service's host, which shows that the requests would have reached it.
@Suite(.serialized)
struct OutboundTargetTests {
    static let digest = "sha256:" + String(repeating: "c", count: 64)
    static let accept = [("Accept", "application/vnd.oci.image.manifest.v1+json")]

    func withGateway(extraListed: [String] = [], _ body: (GatewayProcess, HostileUpstream) async throws -> Void) async throws {
        try await HostileUpstream.with(host: "127.0.0.2", internalHost: "127.0.0.1") { hostile in
            try await hostile.configure("""
                {"modes": {
                  "redirrel": {"behaviour": "redir", "location": "//\(hostile.internalHost):\(hostile.internalPort)/internal/{tail}"},
                  "redirname": {"behaviour": "redir", "location": "http://localhost:\(hostile.internalPort)/internal/{tail}"},
                  "redirself": {"behaviour": "redir", "location": "{self}/v2/serve/x/{tail}"},
                  "realmname": {"behaviour": "realm", "realm": "http://localhost:\(hostile.internalPort)/token"},
                  "realmclosed": {"behaviour": "realm", "realm": "http://127.0.0.3:\(try FreePort.allocate())/token"}
                }}
                """)
            var config = GatewayConfig(defaultRegistry: "evil.test", healthInterval: "1h", failureThreshold: 1000)
            let listed = ["127.0.0.1", "localhost", "127.0.0.3"] + extraListed
            config.registries = [
                .init(key: "evil.test", upstreams: [.init(name: "hostile", url: hostile.url)]),
                .init(key: "listed.test", upstreams: [.init(name: "hostile", url: hostile.url, extra: [
                    "redirect_hosts: [\(listed.joined(separator: ", "))]", "auth_hosts: [\(listed.joined(separator: ", "))]",
                ])]),
            ]
            try await GatewayProcess.with(config) { gateway in try await body(gateway, hostile) }
        }
    }

    @Test func redirectsToTheGatewaysNetworkAreRefused() async throws {
        try await withGateway { gateway, hostile in
            let paths = [
                "redir/x/tags/list", "redirrel/x/tags/list", "redirname/x/tags/list", "redir/x/manifests/latest",
                "redir/x/referrers/\(Self.digest)", "redir/x/blobs/\(Self.digest)",
            ]
            for path in paths {
                let refused = try await HTTPFetch.get("\(gateway.url)/v2/\(path)?ns=evil.test", headers: Self.accept)
                #expect(refused.status >= 400, "\(path): \(refused.status) \(refused.text)")
                #expect(!refused.text.contains("INTERNAL-SECRET"), "\(path): \(refused.text)")
                // The client learns neither the address nor whether the name resolved.
                #expect(!refused.text.contains("127.0.0.1") && !refused.text.contains("localhost"), "\(path): \(refused.text)")
            }
            #expect(hostile.internalRequests().isEmpty, "the internal service was reached: \(hostile.internalRequests())")
            #expect(hostile.upstreamRequests().filter { $0.mode?.hasPrefix("redir") == true }.count >= paths.count)
            #expect(gateway.logText().contains("refusing to follow a redirect to a non-public address"), "\(gateway.logTail())")

            // A redirect to the upstream's own address (another port would do too) is followed.
            // (The answer is then refused all the same: `{}` is not a tag list.)
            let ownBefore = hostile.upstreamRequests().filter { $0.mode == "serve" || $0.path.hasPrefix("/self") }.count
            let own = try await HTTPFetch.get("\(gateway.url)/v2/redirself/x/tags/list?ns=evil.test")
            #expect(own.text.contains("not a tag list"), "\(own.status) \(own.text)")
            #expect(hostile.upstreamRequests().filter { $0.mode == "serve" || $0.path.hasPrefix("/self") }.count > ownBefore, "\(hostile.upstreamRequests())")

            // Listed, the same redirects reach the internal service: the refusals above were
            // the policy, not a broken setup.
            for path in ["redir/x/tags/list", "redirrel/x/tags/list", "redirname/x/tags/list"] {
                // Followed, and then refused as what it is: not a tag list.
                let allowed = try await HTTPFetch.get("\(gateway.url)/v2/\(path)?ns=listed.test")
                #expect(allowed.status == 502 && allowed.text.contains("not a tag list"), "\(path): \(allowed.text)")
                #expect(!allowed.text.contains("INTERNAL-SECRET"))
            }
            #expect(hostile.internalRequests().count == 3, "\(hostile.internalRequests())")
            #expect(gateway.isRunning)
        }
    }

    /// A realm on the gateway's network is never asked, and every realm that gives no token —
    /// refused, closed, or answering something else — gives the client the same answer.
    @Test func realmsOnTheGatewaysNetworkAreRefusedAndEveryFailureReadsTheSame() async throws {
        try await withGateway { gateway, hostile in
            let refused = [
                try await HTTPFetch.get("\(gateway.url)/v2/realm/x/manifests/v1?ns=evil.test", headers: Self.accept),
                try await HTTPFetch.get("\(gateway.url)/v2/realmname/x/manifests/v1?ns=evil.test", headers: Self.accept),
                try await HTTPFetch.get("\(gateway.url)/v2/realmclosed/x/manifests/v1?ns=evil.test", headers: Self.accept),
            ]
            #expect(hostile.internalRequests().isEmpty, "a refused realm was asked: \(hostile.internalRequests())")
            // Listed: the open internal service answers without a token, the closed port refuses.
            let reached = [
                try await HTTPFetch.get("\(gateway.url)/v2/realm/x/manifests/v1?ns=listed.test", headers: Self.accept),
                try await HTTPFetch.get("\(gateway.url)/v2/realmclosed/x/manifests/v1?ns=listed.test", headers: Self.accept),
            ]
            #expect(hostile.internalRequests().map(\.path).allSatisfy { $0.hasPrefix("/token?") }, "\(hostile.internalRequests())")
            #expect(hostile.internalRequests().count == 1, "\(hostile.internalRequests())")
            let answers = refused + reached
            for answer in answers {
                #expect(answer.status == answers[0].status && answer.text == answers[0].text, "\(answer.status) \(answer.text) vs \(answers[0].text)")
                #expect(answer.text.contains("token service unavailable"), "\(answer.text)")
                #expect(!answer.text.contains("127.0.0") && !answer.text.contains("refused") && !answer.text.contains("INTERNAL"), "\(answer.text)")
            }
            let log = gateway.logText()
            #expect(log.contains("realm refused"), "\(gateway.logTail())")
        }
    }
}
