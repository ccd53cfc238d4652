import Foundation
import Testing

/// Quota as a routing input, against real registries: token auth (a real `docker-registry`
/// trusting a test token issuer, as Hub trusts auth.docker.io) and a Docker Hub-style
/// rate-limit front (the one double: no package provides Hub's limiter).
@Suite(.serialized)
struct QuotaTests {
    let skopeo: Skopeo
    static let alice = TokenIssuer.User("alice", password: "s3cret-alice-pw")

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// Images pushed with credentials to a token registry whose `library/*` is public.
    func pushImages(_ count: Int, to registry: TokenAuthRegistry, prefix: String = "library/app") async throws -> [ImageFixture] {
        var fixtures: [ImageFixture] = []
        for index in 0..<count {
            let fixture = try ImageFixture.make(.ociImage, layerSizes: [32 << 10])
            try await skopeo.push(fixture, to: registry.hostPort, repository: "\(prefix)\(index)", tag: "v1",
                                  credentials: .init(user: Self.alice.name, password: Self.alice.password))
            fixtures.append(fixture)
        }
        return fixtures
    }

    static func hubConfig(front: String, anonymousPulls: Int, ttl: String = "10m") -> GatewayConfig {
        var config = GatewayConfig(tagTTL: ttl)
        config.registries = [.init(key: "docker.io", upstreams: [
            .init(name: "hub-anonymous", url: front, extra: ["budget: {pulls: \(anonymousPulls), window: 6h}"]),
            // The token issuer is another port of this host, so another origin: listed.
            .init(name: "hub-authenticated", url: front, extra: ["username: \(alice.name)", "password: \(alice.password)", "auth_hosts: [127.0.0.1]"]),
        ])]
        return config
    }

    /// The anonymous Hub upstream is spent before the authenticated one; repeated pulls of
    /// the same tags spend at most one manifest GET per distinct digest; and the spends
    /// survive a restart of the gateway.
    @Test func anonymousBudgetIsSpentFirstAndSurvivesARestart() async throws {
        try await TokenAuthRegistry.with(users: [Self.alice], publicRepositories: ["library/*"]) { hub in
            let images = try await pushImages(4, to: hub)
            let front = try await RegistryFront.start(backend: hub.url, expectStatus: 401)
            try await front.rateLimit(limit: 100, window: 21600, perUser: true)
            let gateway = try await GatewayProcess.start(Self.hubConfig(front: front.url, anonymousPulls: 2, ttl: "0s"))
            do {
                // Two images, each pulled three times: 2 spends, both anonymous.
                for _ in 0..<3 {
                    for index in 0..<2 {
                        let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app\(index)", reference: "v1")
                        #expect(pulled.allDigests == images[index].allDigests)
                    }
                }
                var state = try await front.rateLimitState()
                #expect(state.users[""] == 2, "anonymous spends: \(state.users)")
                #expect(state.users["alice"] ?? 0 == 0)

                // The anonymous budget (2) is spent: the next new digest goes to the account.
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/app2", reference: "v1")
                state = try await front.rateLimitState()
                #expect(state.users[""] == 2)
                #expect(state.users["alice"] == 1)
                #expect(gateway.logText().contains("hub-anonymous: skipped (pull budget spent"))

                // After a restart the spent anonymous budget is still spent.
                try await gateway.restart()
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/app3", reference: "v1")
                state = try await front.rateLimitState()
                #expect(state.users[""] == 2, "a restart spent anonymous pulls again: \(state.users)")
                #expect(state.users["alice"] == 2)

                let status = try await HTTPFetch.get("\(gateway.url)/_mirrorgate/upstreams")
                #expect(status.status == 200)
                #expect(!status.text.contains(Self.alice.password))
                let report = try JSONSerialization.jsonObject(with: status.body) as? [String: Any]
                let upstreams = ((report?["registries"] as? [[String: Any]])?.first?["upstreams"] as? [[String: Any]]) ?? []
                #expect(upstreams.map { $0["name"] as? String } == ["hub-anonymous", "hub-authenticated"])
                let anonymousBudget = upstreams.first?["budget"] as? [String: Any]
                #expect(anonymousBudget?["remaining"] as? Int == 0)
                #expect(anonymousBudget?["spent_in_window"] as? Int == 2)
                #expect(anonymousBudget?["reset_at"] is String)
                #expect(upstreams.first?["circuit"] as? String == "closed")
            } catch {
                await gateway.stop()
                await front.stop()
                throw error
            }
            await gateway.stop()
            await front.stop()
            // Credentials went to the issuer only as the configured account, never in a log.
            #expect(!gateway.logText().contains(Self.alice.password))
            #expect(!hub.issuer.rawLog().contains(Self.alice.password))
        }
    }

    /// The upstream announces its limit in headers: no GET is sent once it announces zero, so
    /// there is no avoidable 429; the next upstream serves instead, and nothing has budget
    /// left → 429 TOOMANYREQUESTS with Retry-After (or the stale tag), never a 5xx.
    @Test func noAvoidable429WhenTheHeadersAnnouncedTheLimit() async throws {
        try await TokenAuthRegistry.with(users: [Self.alice], publicRepositories: ["library/*"]) { hub in
            let images = try await pushImages(3, to: hub)
            let front = try await RegistryFront.start(backend: hub.url, expectStatus: 401)
            try await front.rateLimit(limit: 2, window: 21600, headerPrefix: "x-")
            var config = GatewayConfig(tagTTL: "0s")
            config.registries = [.init(key: "docker.io", upstreams: [.init(name: "hub", url: front.url)])]
            try await GatewayProcess.with(config) { gateway in
                for index in 0..<2 {
                    _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/app\(index)", reference: "v1")
                }
                // A third new digest: the HEAD (free) says 0 left; the GET is not sent.
                let third = try await HTTPFetch.get(
                    "\(gateway.url)/v2/library/app2/manifests/v1", headers: [("Accept", "application/vnd.oci.image.manifest.v1+json")])
                #expect(third.status == 429)
                #expect(try envelopeCode(third.body) == "TOOMANYREQUESTS")
                let retryAfter = try #require(third.header("Retry-After").flatMap(Int.init))
                #expect(retryAfter > 0 && retryAfter <= 21600)
                let log = try await front.requests()
                #expect(!log.contains { $0.hasSuffix(" 429") }, "the gateway ran into a 429 it had been told about: \(log)")
                #expect(try await front.rateLimitState().used == 2)

                // A tag pulled before is still served (stale) while no budget is left.
                let stale = try await HTTPFetch.get(
                    "\(gateway.url)/v2/library/app0/manifests/v1", headers: [("Accept", "application/vnd.oci.image.manifest.v1+json")])
                #expect(stale.status == 200)
                #expect(stale.header("Docker-Content-Digest") == images[0].topDigest)
            }
            await front.stop()
        }
    }

    /// Credentials never reach a token realm on a foreign host — another origin, here the same
    /// address on another port (one on another address of the gateway's network is not even
    /// asked, OutboundTargetTests); listing it in `auth_hosts` allows it.
    @Test func credentialsNeverReachAForeignRealm() async throws {
        try await TokenAuthRegistry.with(users: [Self.alice], publicRepositories: ["library/*"], realmHost: "127.0.0.1") { hub in
            _ = try await pushImages(1, to: hub, prefix: "private/app")
            try await hub.issuer.clearRequests()
            var config = GatewayConfig()
            config.registries = [.init(key: "docker.io", upstreams: [
                .init(name: "hub", url: hub.url, extra: ["username: \(Self.alice.name)", "password: \(Self.alice.password)"]),
            ])]
            try await GatewayProcess.with(config) { gateway in
                let denied = try await HTTPFetch.get(
                    "\(gateway.url)/v2/private/app0/manifests/v1", headers: [("Accept", "application/vnd.oci.image.manifest.v1+json")])
                #expect(denied.status == 404)
                #expect(try envelopeCode(denied.body) == "NAME_UNKNOWN")
                #expect(!hub.issuer.tokenRequests().isEmpty)
                #expect(hub.issuer.tokenRequests().allSatisfy { $0.authorization == nil && $0.user == nil && $0.method == "GET" })
                #expect(gateway.logText().contains("refusing to send credentials to a token realm on a foreign host"))
            }
            config.registries[0].upstreams[0].extra.append("auth_hosts: [127.0.0.1]")
            try await GatewayProcess.with(config) { gateway in
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "private/app0", reference: "v1")
                #expect(!pulled.allDigests.isEmpty)
                #expect(hub.issuer.tokenRequests().contains { $0.user == Self.alice.name })
            }
        }
    }

    /// The OAuth2 form POST is used where the realm takes it, GET with Basic where it does
    /// not (404), and one token is fetched for many concurrent requests of one scope.
    @Test(arguments: [true, false])
    func tokenFlowWithCredentials(allowPost: Bool) async throws {
        try await TokenAuthRegistry.with(users: [Self.alice], publicRepositories: [], allowPost: allowPost) { hub in
            let images = try await pushImages(1, to: hub, prefix: "team/app")
            try await hub.issuer.clearRequests()
            var config = GatewayConfig()
            config.registries = [.init(key: "docker.io", upstreams: [
                .init(name: "hub", url: hub.url, extra: ["username: \(Self.alice.name)", "password: \(Self.alice.password)", "auth_hosts: [127.0.0.1]"]),
            ])]
            try await GatewayProcess.with(config) { gateway in
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "team/app0", reference: "v1")
                #expect(pulled.allDigests == images[0].allDigests)
                let tokens = hub.issuer.tokenRequests()
                let granted = tokens.filter { $0.status == 200 }
                #expect(granted.count == 1, "one token for one scope, however many requests: \(tokens)")
                #expect(granted.first?.method == (allowPost ? "POST" : "GET"))
                #expect(granted.first?.user == Self.alice.name)
            }
        }
    }

    /// An upstream that asks for Basic credentials gets them; without them its repositories
    /// are "not found" (404 NAME_UNKNOWN), never a 5xx.
    @Test func basicAuthUpstream() async throws {
        try await HtpasswdRegistry.with(users: ["bob": "b0b-basic-pw"]) { cache in
            let fixture = try ImageFixture.make(.ociIndex)
            try await skopeo.push(fixture, to: cache.hostPort, repository: "library/app", credentials: .init(user: "bob", password: "b0b-basic-pw"))
            let secrets = try TemporaryDirectory(prefix: "secret")
            let passwordFile = secrets.appending("password")
            try "b0b-basic-pw\n".write(to: passwordFile, atomically: true, encoding: .utf8)
            var config = GatewayConfig()
            config.registries = [.init(key: "docker.io", upstreams: [
                .init(name: "private-cache", url: cache.url, extra: ["username: bob", "password_file: \(passwordFile.path)"]),
            ])]
            try await GatewayProcess.with(config) { gateway in
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "v1")
                #expect(pulled.allDigests == fixture.allDigests)
                #expect(!gateway.logText().contains("b0b-basic-pw"))
            }
            config.registries[0].upstreams[0].extra = []
            try await GatewayProcess.with(config) { gateway in
                let denied = try await HTTPFetch.get(
                    "\(gateway.url)/v2/library/app/manifests/v1", headers: [("Accept", "application/vnd.oci.image.index.v1+json")])
                #expect(denied.status == 404)
                #expect(try envelopeCode(denied.body) == "NAME_UNKNOWN")
            }
        }
    }

    /// Concurrent first pulls of one tag share one HEAD and one manifest GET (one spend).
    @Test func concurrentColdPullsOfATagSpendOnce() async throws {
        try await TokenAuthRegistry.with(users: [Self.alice], publicRepositories: ["library/*"]) { hub in
            let images = try await pushImages(1, to: hub)
            let front = try await RegistryFront.start(backend: hub.url, expectStatus: 401)
            try await front.rateLimit(limit: 100, window: 21600)
            var config = GatewayConfig(tagTTL: "0s")
            config.registries = [.init(key: "docker.io", upstreams: [.init(name: "hub", url: front.url)])]
            try await GatewayProcess.with(config) { gateway in
                let url = "\(gateway.url)/v2/library/app0/manifests/v1"
                // Hold the upstream still for a moment so every request arrives while the first
                // one's HEAD is in flight.
                front.process.kill(signal: SIGSTOP)
                let digests = try await withThrowingTaskGroup(of: String?.self) { group in
                    for _ in 0..<8 {  // the shared test client opens at most 8 connections per host
                        group.addTask {
                            try await HTTPFetch.get(url, headers: [("Accept", "application/vnd.oci.image.manifest.v1+json")]).header("Docker-Content-Digest")
                        }
                    }
                    try await Task.sleep(for: .milliseconds(500))
                    front.process.kill(signal: SIGCONT)
                    var all: [String?] = []
                    for try await digest in group { all.append(digest) }
                    return all
                }
                #expect(digests.allSatisfy { $0 == images[0].topDigest })
                #expect(try await front.rateLimitState().used == 1)
                let heads = try await front.requests().filter { $0.hasPrefix("HEAD /v2/library/app0/manifests/v1") && $0.hasSuffix(" 200") }
                #expect(heads.count == 1, "\(heads)")
            }
            await front.stop()
        }
    }
}
