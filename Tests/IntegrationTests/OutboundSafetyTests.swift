import Foundation
import Testing

/// What the gateway sends upstream, with real processes: redirects (followed by hand, at
/// most `UpstreamClient.maxRedirects` hops, never from https to http, never with the
/// upstream's credentials to another origin, never stuck on a body that does not come),
/// credentials never over plain http (not even to the upstream's own token realm), a
/// client's own `Authorization` never passed on, and the read-only rule (no write ever
/// reaches an upstream). Upstreams are real `docker-registry` processes (with htpasswd or token
/// auth where credentials matter) behind `Fixtures/registry_front.py`, which plays Docker
/// Hub's redirect of blob downloads to a CDN and logs whether each request carried an
/// `Authorization` header; 127.0.0.2 plays "another host" (listed in `redirect_hosts`: like
/// any address of the gateway's own networks, it is refused as a redirect target otherwise).
@Suite(.serialized)
struct OutboundSafetyTests {
    let skopeo: Skopeo
    static let user = "mirror-robot"
    static let password = "pw-never-leaves-the-upstream"
    static var credentials: Skopeo.Credentials { .init(user: user, password: password) }
    /// `UpstreamClient.maxRedirects` (the integration tests do not link the gateway's modules).
    static let maxRedirects = 5

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// Where a blob redirect goes, and which credentials the upstream holds.
    enum RedirectCase: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// htpasswd upstream (Basic), target on 127.0.0.2.
        case basicToAnotherHost
        /// token upstream (Bearer token obtained with the credentials), target on 127.0.0.2.
        case bearerToAnotherHost
        /// htpasswd upstream redirecting manifests as well as blobs to 127.0.0.2.
        case basicManifestsAndBlobsToAnotherHost
        /// htpasswd upstream, target on the same host (127.0.0.1) on another port.
        case basicToSameHostOtherPort
        /// htpasswd upstream over http, target on the same host over https (another scheme and port).
        case basicToSameHostOverHTTPS

        var testDescription: String { rawValue }
        var targetHost: String { self == .basicToSameHostOtherPort || self == .basicToSameHostOverHTTPS ? "127.0.0.1" : "127.0.0.2" }
        var redirectsManifests: Bool { self == .basicManifestsAndBlobsToAnotherHost }
        var targetUsesTLS: Bool { self == .basicToSameHostOverHTTPS }
        /// The `Authorization` scheme the gateway uses with the upstream itself.
        var scheme: String { self == .bearerToAnotherHost ? "bearer" : "basic" }
    }

    /// Blob downloads answered with 307 to another origin (Hub → CDN) are followed, every
    /// digest is verified, and neither the upstream's password nor a token obtained for it
    /// is sent to the redirect target — also when the target is the same host on another
    /// port or scheme, and for manifests (any request may be redirected).
    @Test(arguments: RedirectCase.allCases)
    func redirectToAnotherOriginCarriesNoCredentials(_ redirect: RedirectCase) async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [48 << 10, 96 << 10])
        let cleanup = ProcessCleanup()
        do {
            // The redirect target: a plain registry with the same image, behind a logging front.
            let cdn = try await UpstreamRegistry.start(name: "cdn")
            cleanup.add { await cdn.stop() }
            try await skopeo.push(fixture, to: cdn.hostPort, repository: "library/app")
            let certificates = try TemporaryDirectory(prefix: "outbound-tls")
            let tls = redirect.targetUsesTLS ? try await RegistryFront.makeCertificate(in: certificates) : nil
            let target = try await RegistryFront.start(backend: cdn.url, host: redirect.targetHost, tls: tls)
            cleanup.add { await target.stop() }

            // The upstream wants credentials; its front redirects the blobs it would serve.
            let backend: String
            var tokenIssuer: TokenIssuer?
            if redirect.scheme == "bearer" {
                let registry = try await TokenAuthRegistry.start(users: [.init(Self.user, password: Self.password)])
                cleanup.add { await registry.stop() }
                try await skopeo.push(fixture, to: registry.hostPort, repository: "library/app", credentials: Self.credentials)
                backend = registry.url
                tokenIssuer = registry.issuer
            } else {
                let registry = try await HtpasswdRegistry.start(users: [Self.user: Self.password])
                cleanup.add { await registry.stop() }
                try await skopeo.push(fixture, to: registry.hostPort, repository: "library/app", credentials: Self.credentials)
                backend = registry.url
            }
            let front = try await RegistryFront.start(backend: backend, expectStatus: 401)
            cleanup.add { await front.stop() }
            try await front.redirectBlobs(to: target.url)
            if redirect.redirectsManifests { try await front.redirectManifests(to: target.url) }

            var extra = ["username: \(Self.user)", "password: \(Self.password)"]
            // The target's certificate is self-signed (skip_tls_verify also covers redirect targets).
            if redirect.targetUsesTLS { extra.append("skip_tls_verify: true") }
            // Another loopback address is another host on the gateway's network: it must be listed.
            if redirect.targetHost != "127.0.0.1" { extra.append("redirect_hosts: [\(redirect.targetHost)]") }
            // The token issuer is another port of the registry's host: another origin.
            if redirect.scheme == "bearer" { extra.append("auth_hosts: [127.0.0.1]") }
            var config = GatewayConfig()
            config.registries = [.init(key: "docker.io", upstreams: [.init(name: "hub", url: front.url, extra: extra)])]
            let gateway = try await GatewayProcess.start(config)
            cleanup.add { await gateway.stop() }

            let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "v1")
            #expect(pulled.allDigests == fixture.allDigests)

            // The upstream saw the blob GETs with its credentials and redirected every one…
            let upstreamLog = try await front.loggedRequests()
            let redirected = upstreamLog.filter { $0.isBlob && $0.status == 307 }
            #expect(Set(redirected.compactMap(\.digest)) == Set(fixture.blobDigests), "\(upstreamLog)")
            #expect(redirected.allSatisfy { $0.auth == redirect.scheme }, "\(upstreamLog)")
            // …and the target served them all, without any Authorization.
            let targetLog = try await target.loggedRequests()
            let served = targetLog.filter { $0.isBlob && $0.status == 200 }
            #expect(Set(served.compactMap(\.digest)) == Set(fixture.blobDigests), "\(targetLog)")
            #expect(targetLog.allSatisfy { $0.auth == "none" }, "credentials crossed to \(target.url): \(targetLog)")
            if redirect.redirectsManifests {
                let manifests = upstreamLog.filter { $0.path.contains("/manifests/") && $0.status == 307 }
                #expect(!manifests.isEmpty && manifests.allSatisfy { $0.auth == redirect.scheme }, "\(upstreamLog)")
                #expect(targetLog.contains { $0.path.contains("/manifests/") && $0.status == 200 }, "\(targetLog)")
            }
            if let tokenIssuer {
                #expect(!tokenIssuer.tokenRequests().isEmpty, "the upstream was not reached with a token")
            }
            #expect(!gateway.logText().contains(Self.password))
        } catch {
            await cleanup.run()
            throw error
        }
        await cleanup.run()
    }

    /// A redirect loop is given up after `maxRedirects` hops (1 + 5 requests per blob) and
    /// the next upstream serves; the log names the reason.
    @Test func redirectLoopIsAbandonedAfterMaxRedirectsAndTheNextUpstreamServes() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [32 << 10])
        let cleanup = ProcessCleanup()
        do {
            let holder = try await UpstreamRegistry.start(name: "holder")
            cleanup.add { await holder.stop() }
            try await skopeo.push(fixture, to: holder.hostPort, repository: "library/app")
            let front = try await RegistryFront.start(backend: holder.url)
            cleanup.add { await front.stop() }
            try await front.redirectLoop(true)

            var config = GatewayConfig(failureThreshold: 10)
            config.registries = [.init(key: "docker.io", upstreams: [
                .init(name: "looping", url: front.url), .init(name: "direct", url: holder.url),
            ])]
            let gateway = try await GatewayProcess.start(config)
            cleanup.add { await gateway.stop() }

            // A client's own Authorization (for the gateway) is never passed upstream.
            let manifest = try await HTTPFetch.get("\(gateway.url)/v2/library/app/manifests/v1", headers: [
                ("Accept", fixture.topMediaType), ("Authorization", "Bearer meant-for-the-gateway-only"),
            ])
            #expect(manifest.status == 200)
            let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "v1")
            #expect(pulled.allDigests == fixture.allDigests)
            let manifestRequests = try await front.loggedRequests().filter { $0.path.contains("/manifests/") }
            #expect(!manifestRequests.isEmpty && manifestRequests.allSatisfy { $0.auth == "none" }, "\(manifestRequests)")

            let loopLog = try await front.loggedRequests().filter(\.isBlob)
            for digest in fixture.blobDigests {
                let hops = loopLog.filter { $0.digest == digest }
                #expect(hops.count == 1 + Self.maxRedirects, "\(digest): \(hops)")
                #expect(hops.allSatisfy { $0.method == "GET" && $0.status == 307 })
            }
            let direct = holder.requests().filter { $0.isBlob && $0.method == "GET" && $0.status == 200 }
            #expect(Set(direct.compactMap(\.reference)) == Set(fixture.blobDigests))
            let log = gateway.logText()
            #expect(log.contains("more than \(Self.maxRedirects) redirects"), "\(gateway.logTail())")
        } catch {
            await cleanup.run()
            throw error
        }
        await cleanup.run()
    }

    /// A redirect whose announced body never arrives does not hold the fetch: the gateway
    /// stops waiting for it after `health.timeout` and follows the Location.
    @Test func aRedirectWhoseBodyNeverArrivesIsStillFollowed() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [16 << 10])
        let cleanup = ProcessCleanup()
        do {
            let holder = try await UpstreamRegistry.start(name: "holder")
            cleanup.add { await holder.stop() }
            try await skopeo.push(fixture, to: holder.hostPort, repository: "library/app")
            let target = try await RegistryFront.start(backend: holder.url, host: "127.0.0.2")
            cleanup.add { await target.stop() }
            let front = try await RegistryFront.start(backend: holder.url)
            cleanup.add { await front.stop() }
            try await front.redirectBlobs(to: target.url)
            try await front.stallRedirects(true)

            var config = GatewayConfig.upstreams([front.url])
            config.registries[0].upstreams[0].extra = ["redirect_hosts: [127.0.0.2]"]
            config.healthTimeout = "1s"
            let gateway = try await GatewayProcess.start(config)
            cleanup.add { await gateway.stop() }

            let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "v1")
            #expect(pulled.allDigests == fixture.allDigests)
            let stalled = try await front.loggedRequests().filter { $0.isBlob && $0.status == 307 }
            #expect(Set(stalled.compactMap(\.digest)) == Set(fixture.blobDigests))
            let served = try await target.loggedRequests().filter { $0.isBlob && $0.status == 200 }
            #expect(Set(served.compactMap(\.digest)) == Set(fixture.blobDigests))
        } catch {
            await cleanup.run()
            throw error
        }
        await cleanup.run()
    }

    /// A manifest whose head arrives but whose body never does is given up after
    /// `health.timeout` without a byte, and the next upstream serves.
    @Test func aManifestBodyThatNeverArrivesFailsOver() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [16 << 10])
        let cleanup = ProcessCleanup()
        do {
            let holder = try await UpstreamRegistry.start(name: "holder")
            cleanup.add { await holder.stop() }
            try await skopeo.push(fixture, to: holder.hostPort, repository: "library/app")
            let front = try await RegistryFront.start(backend: holder.url)
            cleanup.add { await front.stop() }
            try await front.stallManifestBodies(true)

            var config = GatewayConfig(healthTimeout: "1s", failureThreshold: 10)
            config.registries = [.init(key: "docker.io", upstreams: [
                .init(name: "stalling", url: front.url), .init(name: "direct", url: holder.url),
            ])]
            let gateway = try await GatewayProcess.start(config)
            cleanup.add { await gateway.stop() }

            let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "v1")
            #expect(pulled.allDigests == fixture.allDigests)
            let stalled = try await front.loggedRequests().filter { $0.method == "GET" && $0.path.contains("/manifests/") }
            #expect(!stalled.isEmpty, "the stalling upstream was never asked")
            #expect(gateway.logText().contains("stalling"))
        } catch {
            await cleanup.run()
            throw error
        }
        await cleanup.run()
    }

    /// An https upstream that redirects blobs to plain http is not followed: not one request
    /// reaches the http target; the next upstream serves and the log says why.
    @Test func redirectFromHTTPSToHTTPIsRefused() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [32 << 10])
        let cleanup = ProcessCleanup()
        do {
            let holder = try await UpstreamRegistry.start(name: "holder")
            cleanup.add { await holder.stop() }
            try await skopeo.push(fixture, to: holder.hostPort, repository: "library/app")
            let target = try await RegistryFront.start(backend: holder.url, host: "127.0.0.2")
            cleanup.add { await target.stop() }
            let certificates = try TemporaryDirectory(prefix: "outbound-tls")
            let tls = try await RegistryFront.makeCertificate(in: certificates)
            let secure = try await RegistryFront.start(backend: holder.url, tls: tls)
            cleanup.add { await secure.stop() }
            try await secure.redirectBlobs(to: target.url)
            #expect(secure.url.hasPrefix("https://") && target.url.hasPrefix("http://"))

            var config = GatewayConfig(failureThreshold: 10)
            config.registries = [.init(key: "docker.io", upstreams: [
                // Listed, so that only the downgrade rule refuses the redirect.
                .init(name: "secure", url: secure.url, extra: ["skip_tls_verify: true", "redirect_hosts: [127.0.0.2]"]),
                .init(name: "direct", url: holder.url),
            ])]
            let gateway = try await GatewayProcess.start(config)
            cleanup.add { await gateway.stop() }

            let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "v1")
            #expect(pulled.allDigests == fixture.allDigests)

            let secureLog = try await secure.loggedRequests()
            // The manifest came over TLS from the first upstream; each blob was redirected once.
            #expect(secureLog.contains { $0.path.contains("/manifests/") && $0.status == 200 }, "\(secureLog)")
            let redirected = secureLog.filter { $0.isBlob && $0.status == 307 }
            #expect(redirected.compactMap(\.digest).sorted() == fixture.blobDigests.sorted(), "\(secureLog)")
            #expect(try await target.loggedRequests().filter(\.isBlob).isEmpty, "an https → http redirect was followed")
            let direct = holder.requests().filter { $0.isBlob && $0.method == "GET" && $0.status == 200 }
            #expect(Set(direct.compactMap(\.reference)) == Set(fixture.blobDigests))
            #expect(gateway.logText().contains("refusing to follow a redirect from https to http"), "\(gateway.logTail())")
        } catch {
            await cleanup.run()
            throw error
        }
        await cleanup.run()
    }

    /// An https upstream whose token realm is plain http (on its own host) gets its token
    /// anonymously: the credentials never travel unencrypted. The same registry reached
    /// over http (where nothing is downgraded) gets them.
    @Test func credentialsOfAnHTTPSUpstreamNeverGoToAnHTTPRealm() async throws {
        let alice = TokenIssuer.User(Self.user, password: Self.password)
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [16 << 10])
        let cleanup = ProcessCleanup()
        do {
            let hub = try await TokenAuthRegistry.start(users: [alice], publicRepositories: ["library/*"])
            cleanup.add { await hub.stop() }
            #expect(hub.realm.hasPrefix("http://127.0.0.1:"))
            try await skopeo.push(fixture, to: hub.hostPort, repository: "private/app", credentials: Self.credentials)
            try await skopeo.push(fixture, to: hub.hostPort, repository: "library/app", credentials: Self.credentials)
            let certificates = try TemporaryDirectory(prefix: "outbound-tls")
            let secure = try await RegistryFront.start(
                backend: hub.url, expectStatus: 401, tls: try await RegistryFront.makeCertificate(in: certificates))
            cleanup.add { await secure.stop() }
            try await hub.issuer.clearRequests()

            let accept = [("Accept", fixture.topMediaType)]
            var config = GatewayConfig()
            config.registries = [.init(key: "docker.io", upstreams: [
                // The realm is another port of this host: listed, so that only the downgrade rule refuses.
                .init(name: "hub", url: secure.url, extra: [
                    "username: \(Self.user)", "password: \(Self.password)", "skip_tls_verify: true", "auth_hosts: [127.0.0.1]",
                ]),
            ])]
            let gateway = try await GatewayProcess.start(config)
            cleanup.add { await gateway.stop() }
            let denied = try await HTTPFetch.get("\(gateway.url)/v2/private/app/manifests/v1", headers: accept)
            #expect(denied.status == 404, "\(denied.text)")
            // Public content still comes through, with an anonymous token.
            let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "v1")
            #expect(pulled.allDigests == fixture.allDigests)
            let tokens = hub.issuer.tokenRequests()
            #expect(!tokens.isEmpty)
            #expect(tokens.allSatisfy { $0.authorization == nil && $0.user == nil }, "\(tokens)")
            #expect(gateway.logText().contains("refusing to send credentials over http to the token realm of an https upstream"))
            #expect(try await secure.loggedRequests().contains { $0.path.contains("/manifests/") && $0.auth == "bearer" })
            await gateway.stop()

            // Over http the same realm is no downgrade: the account's token opens the private repository.
            config.registries[0].upstreams[0] = .init(
                name: "hub", url: hub.url, extra: ["username: \(Self.user)", "password: \(Self.password)", "auth_hosts: [127.0.0.1]"])
            let plain = try await GatewayProcess.start(config)
            cleanup.add { await plain.stop() }
            let allowed = try await HTTPFetch.get("\(plain.url)/v2/private/app/manifests/v1", headers: accept)
            #expect(allowed.status == 200)
            #expect(hub.issuer.tokenRequests().contains { $0.user == Self.user })
        } catch {
            await cleanup.run()
            throw error
        }
        await cleanup.run()
    }

    /// Every write method on every API endpoint answers 405 `UNSUPPORTED` and none reaches
    /// the upstream (a real registry that would accept it); a GET with an 8 MiB body is
    /// answered normally and the gateway keeps serving.
    @Test func everyWriteIsRefusedAndNoneReachesTheUpstream() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [32 << 10])
        let cleanup = ProcessCleanup()
        do {
            let upstream = try await UpstreamRegistry.start(name: "writable")
            cleanup.add { await upstream.stop() }
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/app")
            var config = GatewayConfig.upstreams([upstream.url])
            config.healthInterval = "1h"
            let gateway = try await GatewayProcess.start(config)
            cleanup.add { await gateway.stop() }
            _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "v1")
            let layer = try #require(fixture.layers.first)
            upstream.clearRequests()

            let base = gateway.url
            let paths = [
                "/v2/", "/v2/library/app/manifests/v1", "/v2/library/app/manifests/\(fixture.topDigest)",
                "/v2/library/app/blobs/\(layer.digest)", "/v2/library/app/blobs/uploads/",
                "/v2/library/app/blobs/uploads/0a1b2c3d-upload-session", "/docker.io/v2/library/app/manifests/v1",
                "/v2/library/new/manifests/v1", "/v2/library/app/tags/list",
            ]
            var refused: [String] = []
            for method in ["PUT", "POST", "PATCH", "DELETE"] {
                for path in paths {
                    let response = try await HTTPFetch.request(
                        base + path, method: method, headers: [("Content-Type", "application/json")], body: Data("{}".utf8))
                    #expect(response.status == 405, "\(method) \(path) → \(response.status) \(response.text)")
                    #expect(try envelopeCode(response.body) == "UNSUPPORTED", "\(method) \(path) → \(response.text)")
                    refused.append("\(method) \(path)")
                }
            }
            #expect(refused.count == 4 * paths.count)
            // A large upload is refused too, and the connection's body does not hurt the gateway.
            let bigPut = try await HTTPFetch.request(
                base + "/v2/library/app/blobs/uploads/", method: "PUT", body: Data(count: 8 << 20))
            #expect(bigPut.status == 405)

            // A GET carrying an 8 MiB body is answered as a GET.
            let manifestURL = base + "/v2/library/app/manifests/v1"
            let accept = [("Accept", fixture.topMediaType)]
            let odd = try await HTTPFetch.request(manifestURL, method: "GET", headers: accept, body: Data(count: 8 << 20))
            #expect(odd.status == 200)
            #expect(odd.header("Docker-Content-Digest") == fixture.topDigest)
            for _ in 0..<3 {
                let again = try await HTTPFetch.get(manifestURL, headers: accept)
                #expect(again.status == 200 && again.header("Docker-Content-Digest") == fixture.topDigest)
            }
            let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "v1")
            #expect(pulled.allDigests == fixture.allDigests)
            #expect(gateway.isRunning)

            // Nothing but reads ever went upstream (and the writes caused none at all).
            let seen = upstream.requests()
            #expect(seen.allSatisfy { $0.method == "GET" || $0.method == "HEAD" }, "\(seen)")
            #expect(!seen.contains { $0.repository == "library/new" || $0.path.contains("/blobs/uploads") }, "\(seen)")
        } catch {
            await cleanup.run()
            throw error
        }
        await cleanup.run()
    }
}

extension RegistryFront.LoggedRequest {
    /// The digest of a blob request (`nil` for anything else).
    var digest: String? {
        guard let range = path.range(of: "/blobs/") else { return nil }
        let rest = path[range.upperBound...]
        return String(rest.prefix { $0 != "?" })
    }
}
