import Foundation
import Testing

/// Self-tests of the auth and rate-limit test doubles (Support/TokenIssuer.swift,
/// HtpasswdRegistry.swift, RegistryFront+RateLimit.swift, Skopeo+Credentials.swift and
/// Fixtures/token_issuer.py, registry_front.py).
///
/// Needs `docker-registry`, `skopeo` and `python3` with `cryptography`.
@Suite(.serialized)
struct AuthHarnessTests {
    static let alicePassword = "alice-Secret-42"
    static let alice = TokenIssuer.User("alice", password: alicePassword)
    static let aliceCredentials = Skopeo.Credentials(user: "alice", password: alicePassword)
    static let accept = [(
        "Accept",
        "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
            + "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
    )]
    static let hubMessage =
        "You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"

    static func bearer(_ token: String) -> [(String, String)] { accept + [("Authorization", "Bearer \(token)")] }

    /// Starts a front on `backend`, runs `body`, and stops the front even if `body` throws.
    static func withFront<T>(backend: String, expectStatus: Int = 200, _ body: (RegistryFront) async throws -> T) async throws -> T {
        let front = try await RegistryFront.start(backend: backend, expectStatus: expectStatus)
        do {
            let result = try await body(front)
            await front.stop()
            return result
        } catch {
            await front.stop()
            throw error
        }
    }

    // MARK: - Token auth

    @Test func tokenRegistryServesPublicAnonymouslyAndPrivateWithCredentials() async throws {
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [4096])
        try await TokenAuthRegistry.with(users: [Self.alice], publicRepositories: ["public/*"], realmHost: "127.0.0.2") { pair in
            #expect(pair.realm.hasPrefix("http://127.0.0.2:"))
            #expect(pair.url.hasPrefix("http://127.0.0.1:"))
            try await skopeo.push(fixture, to: pair.hostPort, repository: "public/app", credentials: Self.aliceCredentials)
            try await skopeo.push(fixture, to: pair.hostPort, repository: "private/app", credentials: Self.aliceCredentials)
            await #expect(throws: Skopeo.Failure.self) {
                try await skopeo.push(fixture, to: pair.hostPort, repository: "public/other", credentials: nil)
            }

            let challenge = try await HTTPFetch.get("\(pair.url)/v2/private/app/manifests/v1", headers: Self.accept)
            #expect(challenge.status == 401)
            #expect(challenge.header("WWW-Authenticate")
                == #"Bearer realm="\#(pair.realm)",service="registry.docker.io",scope="repository:private/app:pull""#)

            let anonymous = try await skopeo.pull(from: pair.hostPort, repository: "public/app", reference: "v1", credentials: nil)
            #expect(anonymous.topDigest == fixture.topDigest)
            await #expect(throws: Skopeo.Failure.self) {
                _ = try await skopeo.pull(from: pair.hostPort, repository: "private/app", reference: "v1", credentials: nil)
            }
            let authenticated = try await skopeo.pull(
                from: pair.hostPort, repository: "private/app", reference: "v1", credentials: Self.aliceCredentials)
            #expect(authenticated.allDigests == fixture.allDigests)
            await #expect(throws: Skopeo.Failure.self) {
                _ = try await skopeo.pull(
                    from: pair.hostPort, repository: "private/app", reference: "v1",
                    credentials: .init(user: "alice", password: "wrong"))
            }

            let log = pair.issuer.tokenRequests()
            #expect(log.allSatisfy { $0.method == "GET" && $0.host?.hasPrefix("127.0.0.2:") == true }, "\(log)")
            // Anonymous, private: a token granting nothing (a partial grant, not an error).
            #expect(log.contains {
                $0.authorization == nil && $0.scopes == ["repository:private/app:pull"] && $0.status == 200
                    && $0.subject == "" && $0.granted.isEmpty
            }, "\(log)")
            #expect(log.contains {
                $0.authorization == nil && $0.scopes == ["repository:public/app:pull"] && $0.granted == ["repository:public/app:pull"]
            }, "\(log)")
            #expect(log.contains {
                $0.authorization == "basic" && $0.user == "alice" && $0.subject == "alice"
                    && $0.granted.contains("repository:private/app:pull,push")
            }, "\(log)")
            #expect(log.contains { $0.user == "alice" && $0.status == 401 && $0.subject == nil }, "\(log)")
            #expect(log.allSatisfy { $0.service == "registry.docker.io" })
            #expect(!pair.issuer.rawLog().contains(Self.alicePassword))
            #expect(!pair.issuer.rawLog().contains("wrong"))
        }
    }

    @Test func tokenIssuerServesGetAndOAuthPost() async throws {
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.dockerImage, layerSizes: [2048])
        try await TokenAuthRegistry.with(users: [Self.alice], expiresIn: 120) { pair in
            try await skopeo.push(fixture, to: pair.hostPort, repository: "private/app", credentials: Self.aliceCredentials)
            try await pair.issuer.clearRequests()
            let manifestURL = "\(pair.url)/v2/private/app/manifests/v1"
            let scope = "repository:private/app:pull"

            // GET with Basic credentials.
            let got = try TokenIssuer.TokenResponse(
                await pair.issuer.getToken(scopes: [scope], user: "alice", password: Self.alicePassword))
            #expect(got.expiresIn == 120)
            #expect(got.token != nil && got.token == got.accessToken)
            #expect(got.issuedAt?.hasSuffix("Z") == true)
            #expect(got.refreshToken == nil)
            let getToken = try #require(got.bearer)
            let claims = try #require(TokenIssuer.TokenClaims(jwt: getToken))
            #expect(claims.subject == "alice")
            #expect(claims.audience == "registry.docker.io")
            #expect(claims.issuer == "auth.docker.io")
            #expect(claims.access == [scope])
            #expect(claims.algorithm == "RS256" && claims.hasX5C)
            #expect(claims.expiresAt.map { $0 - (claims.issuedAt ?? 0) } == 120)
            let viaGet = try await HTTPFetch.get(manifestURL, headers: Self.bearer(getToken))
            #expect(viaGet.status == 200)
            #expect(viaGet.header("Docker-Content-Digest") == fixture.topDigest)

            // OAuth2 POST (password grant), two scopes, offline → refresh token.
            let posted = try TokenIssuer.TokenResponse(
                await pair.issuer.postToken(
                    scopes: [scope, "repository:other/thing:pull"], user: "alice", password: Self.alicePassword, offline: true))
            #expect(posted.expiresIn == 120)
            let refresh = try #require(posted.refreshToken)
            let postToken = try #require(posted.accessToken)
            #expect(TokenIssuer.TokenClaims(jwt: postToken)?.access == [scope, "repository:other/thing:pull"])
            let viaPost = try await HTTPFetch.get(manifestURL, headers: Self.bearer(postToken))
            #expect(viaPost.status == 200)

            // Refresh-token grant.
            let refreshed = try TokenIssuer.TokenResponse(await pair.issuer.refreshToken(refresh, scopes: [scope]))
            let refreshedToken = try #require(refreshed.bearer)
            #expect(TokenIssuer.TokenClaims(jwt: refreshedToken)?.subject == "alice")

            // Anonymous: a token without access; the registry refuses it.
            let anonymous = try TokenIssuer.TokenResponse(await pair.issuer.getToken(scopes: [scope]))
            let anonymousToken = try #require(anonymous.bearer)
            #expect(TokenIssuer.TokenClaims(jwt: anonymousToken)?.access == [])
            let refused = try await HTTPFetch.get(manifestURL, headers: Self.bearer(anonymousToken))
            #expect(refused.status == 401)
            #expect(refused.header("WWW-Authenticate")?.contains(#"error="insufficient_scope""#) == true)

            // Wrong passwords.
            let badGet = try await pair.issuer.getToken(scopes: [scope], user: "alice", password: "nope")
            #expect(badGet.status == 401)
            #expect(badGet.text.contains("incorrect username or password"))
            let badPost = try await pair.issuer.postToken(scopes: [scope], user: "alice", password: "nope")
            #expect(badPost.status == 401)
            #expect(badPost.text.contains("invalid_grant"))
            let unknownGrant = try await HTTPFetch.request(
                pair.realm, method: "POST", headers: [("Content-Type", "application/x-www-form-urlencoded")],
                body: Data("grant_type=client_credentials&service=registry.docker.io".utf8))
            #expect(unknownGrant.status == 400)

            let log = pair.issuer.tokenRequests()
            #expect(log.count == 7, "\(log)")
            let posts = log.filter { $0.method == "POST" }
            #expect(posts.count == 4)
            let first = try #require(posts.first)
            #expect(first.user == "alice" && first.authorization == nil && first.status == 200)
            #expect(first.form?["grant_type"] == "password")
            #expect(first.form?["client_id"] == "mirrorgate-tests")
            #expect(first.form?["access_type"] == "offline")
            #expect(first.form?["password"] == nil)
            #expect(first.scopes == [scope, "repository:other/thing:pull"])
            #expect(posts.contains { $0.form?["grant_type"] == "refresh_token" && $0.user == "alice" && $0.form?["refresh_token"] == nil })
            let gets = log.filter { $0.method == "GET" }
            #expect(gets.map(\.authorization) == ["basic", nil, "basic"])
            #expect(gets.map(\.status) == [200, 200, 401])
            #expect(gets.allSatisfy { $0.query.contains(TokenIssuer.QueryItem(name: "service", value: "registry.docker.io")) })
            let raw = pair.issuer.rawLog()
            #expect(!raw.contains(Self.alicePassword) && !raw.contains("nope") && !raw.contains(refresh))
        }
    }

    @Test func noPostIssuerAnswers404ToPost() async throws {
        try await TokenIssuer.with(users: [Self.alice], allowPost: false, host: "127.0.0.2") { issuer in
            #expect(issuer.realm.hasPrefix("http://127.0.0.2:"))
            let post = try await issuer.postToken(scopes: ["repository:a/b:pull"], user: "alice", password: Self.alicePassword)
            #expect(post.status == 404)
            let get = try await issuer.getToken(scopes: ["repository:a/b:pull"], user: "alice", password: Self.alicePassword)
            #expect(get.status == 200)
            #expect(try TokenIssuer.TokenResponse(get).bearer != nil)
            let log = issuer.tokenRequests()
            #expect(log.map(\.method) == ["POST", "GET"])
            #expect(log.map(\.status) == [404, 200])
            #expect(log.first?.user == "alice")
            #expect(!issuer.rawLog().contains(Self.alicePassword))
        }
    }

    @Test(arguments: [
        (TokenIssuer.Algorithm.es256, TokenIssuer.KeyReference.x5c),
        (.rs256, .kid),
        (.es256, .kid),
    ])
    func registryAcceptsEveryTokenFlavour(algorithm: TokenIssuer.Algorithm, keyReference: TokenIssuer.KeyReference) async throws {
        let pair = try await TokenAuthRegistry.start(users: [Self.alice], algorithm: algorithm, keyReference: keyReference)
        do {
            let token = try await pair.token(scopes: ["repository:a/b:pull"], user: "alice", password: Self.alicePassword)
            let claims = try #require(TokenIssuer.TokenClaims(jwt: token))
            #expect(claims.algorithm == algorithm.rawValue)
            #expect(claims.hasX5C == (keyReference == .x5c))
            #expect((claims.keyID != nil) == (keyReference == .kid))
            #expect(try await HTTPFetch.get("\(pair.url)/v2/", headers: Self.bearer(token)).status == 200)
            #expect(try await HTTPFetch.get("\(pair.url)/v2/a/b/tags/list", headers: Self.bearer(token)).status == 404)
            #expect(try await HTTPFetch.get("\(pair.url)/v2/").status == 401)
            await pair.stop()
        } catch {
            await pair.stop()
            throw error
        }
    }

    // MARK: - htpasswd (Basic)

    @Test func htpasswdRegistryWantsBasicCredentials() async throws {
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.dockerImage, layerSizes: [2048])
        try await HtpasswdRegistry.with(users: ["bob": "bob-pw-1", "carol": "carol:pw"]) { registry in
            let file = try String(contentsOf: registry.htpasswdURL, encoding: .utf8)
            #expect(file.split(separator: "\n").map { $0.prefix(while: { $0 != ":" }) } == ["bob", "carol"])
            #expect(file.split(separator: "\n").allSatisfy { $0.contains(":$2") })

            let challenge = try await HTTPFetch.get("\(registry.url)/v2/")
            #expect(challenge.status == 401)
            #expect(challenge.header("WWW-Authenticate") == #"Basic realm="mirrorgate-basic-realm""#)
            #expect(try await HTTPFetch.get("\(registry.url)/v2/", headers: [registry.basicAuthorization(user: "bob")]).status == 200)
            #expect(try await HTTPFetch.get("\(registry.url)/v2/", headers: [registry.basicAuthorization(user: "bob", password: "x")]).status == 401)

            await #expect(throws: Skopeo.Failure.self) {
                try await skopeo.push(fixture, to: registry.hostPort, repository: "team/app", credentials: nil)
            }
            try await skopeo.push(fixture, to: registry.hostPort, repository: "team/app", credentials: .init(user: "bob", password: "bob-pw-1"))
            await #expect(throws: Skopeo.Failure.self) {
                _ = try await skopeo.pull(from: registry.hostPort, repository: "team/app", reference: "v1", credentials: nil)
            }
            let pulled = try await skopeo.pull(
                from: registry.hostPort, repository: "team/app", reference: "v1", credentials: .init(user: "carol", password: "carol:pw"))
            #expect(pulled.allDigests == fixture.allDigests)
            let manifest = try await HTTPFetch.get(
                "\(registry.url)/v2/team/app/manifests/v1", headers: Self.accept + [registry.basicAuthorization(user: "carol")])
            #expect(manifest.status == 200)
            let anonymous = try await HTTPFetch.get("\(registry.url)/v2/team/app/manifests/v1", headers: Self.accept)
            #expect(anonymous.status == 401)
            #expect(anonymous.text.contains("UNAUTHORIZED"))
        }
    }

    // MARK: - Rate-limit front

    @Test func rateLimitFrontCountsOnlyManifestGets() async throws {
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [2048])
        try await UpstreamRegistry.with(name: "rl-upstream") { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/app")
            try await Self.withFront(backend: upstream.url) { front in
                try await front.rateLimit(limit: 2, window: 3600)
                let manifest = "\(front.url)/v2/library/app/manifests/v1"
                let byDigest = "\(front.url)/v2/library/app/manifests/\(fixture.topDigest)"
                let layer = try #require(fixture.layers.first)
                let blob = "\(front.url)/v2/library/app/blobs/\(layer.digest)"

                let head = try await HTTPFetch.head(manifest, headers: Self.accept)
                #expect(head.status == 200)
                #expect(head.header("ratelimit-limit") == "2;w=3600")
                #expect(head.header("ratelimit-remaining") == "2;w=3600")
                #expect(head.header("docker-ratelimit-source") == "127.0.0.1")
                #expect(head.header("Docker-Content-Digest") == fixture.topDigest)

                let get1 = try await HTTPFetch.get(manifest, headers: Self.accept)
                #expect(get1.status == 200 && get1.body == fixture.bytes(of: fixture.topDigest))
                #expect(get1.header("ratelimit-limit") == "2;w=3600")
                #expect(get1.header("ratelimit-remaining") == "1;w=3600")

                let blobGet = try await HTTPFetch.get(blob)
                #expect(blobGet.status == 200)
                #expect(blobGet.header("ratelimit-limit") == nil && blobGet.header("ratelimit-remaining") == nil)
                #expect(try await HTTPFetch.head(manifest, headers: Self.accept).header("ratelimit-remaining") == "1;w=3600")
                let missing = try await HTTPFetch.get("\(front.url)/v2/library/app/manifests/nope", headers: Self.accept)
                #expect(missing.status == 404)
                #expect(missing.header("ratelimit-remaining") == "1;w=3600")

                let get2 = try await HTTPFetch.get(byDigest, headers: Self.accept)
                #expect(get2.status == 200)
                #expect(get2.header("ratelimit-remaining") == "0;w=3600")
                var state = try await front.rateLimitState()
                #expect(state.enabled && state.limit == 2 && state.window == 3600 && state.used == 2 && state.remaining == 0)

                let refused = try await HTTPFetch.get(manifest, headers: Self.accept)
                #expect(refused.status == 429)
                #expect(refused.header("Retry-After") == nil)
                #expect(refused.header("ratelimit-limit") == "2;w=3600")
                #expect(refused.header("ratelimit-remaining") == "0;w=3600")
                #expect(refused.header("Content-Type") == "application/json")
                let errors = try #require(
                    (try JSONSerialization.jsonObject(with: refused.body) as? [String: Any])?["errors"] as? [[String: Any]])
                #expect(errors.first?["code"] as? String == "TOOMANYREQUESTS")
                #expect(errors.first?["message"] as? String == Self.hubMessage)

                let headAfter = try await HTTPFetch.head(manifest, headers: Self.accept)
                #expect(headAfter.status == 200)
                #expect(headAfter.header("ratelimit-remaining") == "0;w=3600")
                #expect(try await HTTPFetch.get(blob).status == 200)
                // A pull that would fail anyway gets the backend's answer, not 429.
                #expect(try await HTTPFetch.get("\(front.url)/v2/library/app/manifests/nope", headers: Self.accept).status == 404)
                state = try await front.rateLimitState()
                #expect(state.used == 2 && state.users == ["": 2])
                #expect(try await front.requests().contains("GET /v2/library/app/manifests/v1 429"))

                try await front.rateLimitOff()
                let free = try await HTTPFetch.get(manifest, headers: Self.accept)
                #expect(free.status == 200)
                #expect(free.header("ratelimit-limit") == nil)
                #expect(try await front.rateLimitState().enabled == false)
            }
        }
    }

    @Test func frontKeepsItsOtherModesAndRepeatedHeaders() async throws {
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [4096])
        try await UpstreamRegistry.with(name: "rl-upstream") { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/app")
            try await Self.withFront(backend: upstream.url) { front in
                let manifest = "\(front.url)/v2/library/app/manifests/v1"
                let layer = try #require(fixture.layers.first)
                let blob = "\(front.url)/v2/library/app/blobs/\(layer.digest)"
                // Repeated Accept fields (as skopeo sends them) all reach the backend.
                let repeated = try await HTTPFetch.get(manifest, headers: [
                    ("Accept", "application/vnd.docker.distribution.manifest.v2+json"),
                    ("Accept", "application/vnd.oci.image.manifest.v1+json"),
                ])
                #expect(repeated.status == 200)

                let ranged = try await HTTPFetch.get(blob, headers: [("Range", "bytes=0-9")])
                #expect(ranged.status == 206 && ranged.body.count == 10)
                try await front.ignoreRange(true)
                let whole = try await HTTPFetch.get(blob, headers: [("Range", "bytes=0-9")])
                #expect(whole.status == 200 && whole.body.count == layer.size)
                try await front.ignoreRange(false)

                try await front.rateLimit(limit: 5, window: 60)
                try await front.fail(with: 429)
                let forced = try await HTTPFetch.get(manifest, headers: Self.accept)
                #expect(forced.status == 429 && forced.header("Retry-After") == "60")
                try await front.fail(with: 500)
                #expect(try await HTTPFetch.get(manifest, headers: Self.accept).status == 500)
                try await front.fail(with: 0)
                let forwarded = try await HTTPFetch.get(manifest, headers: Self.accept)
                #expect(forwarded.status == 200 && forwarded.header("ratelimit-remaining") == "4;w=60")
                let log = try await front.requests()
                #expect(log.suffix(3) == [
                    "GET /v2/library/app/manifests/v1 429", "GET /v2/library/app/manifests/v1 500",
                    "GET /v2/library/app/manifests/v1 200",
                ])
            }
        }
    }

    @Test func rateLimitFrontXSpellingHead429AndSlidingWindow() async throws {
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.dockerImage, layerSizes: [1024])
        try await UpstreamRegistry.with(name: "rl-upstream") { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/app")
            try await Self.withFront(backend: upstream.url) { front in
                try await front.rateLimit(limit: 1, window: 2, headerPrefix: "x-", head429: true)
                let manifest = "\(front.url)/v2/library/app/manifests/v1"
                let get = try await HTTPFetch.get(manifest, headers: Self.accept)
                #expect(get.status == 200)
                #expect(get.header("x-ratelimit-limit") == "1;w=2")
                #expect(get.header("x-ratelimit-remaining") == "0;w=2")
                #expect(get.header("ratelimit-limit") == nil && get.header("ratelimit-remaining") == nil)
                #expect(get.header("docker-ratelimit-source") == "127.0.0.1")

                let head = try await HTTPFetch.head(manifest, headers: Self.accept)
                #expect(head.status == 429)
                #expect(head.header("x-ratelimit-remaining") == "0;w=2")
                #expect(try await HTTPFetch.get(manifest, headers: Self.accept).status == 429)

                try await Task.sleep(for: .milliseconds(2200))
                #expect(try await front.rateLimitState().used == 0)
                let again = try await HTTPFetch.get(manifest, headers: Self.accept)
                #expect(again.status == 200)
                #expect(again.header("x-ratelimit-remaining") == "0;w=2")
            }
        }
    }

    @Test func rateLimitFrontInFrontOfTokenRegistryPerUser() async throws {
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [1024])
        try await TokenAuthRegistry.with(users: [Self.alice], publicRepositories: ["library/*"]) { pair in
            try await skopeo.push(fixture, to: pair.hostPort, repository: "library/app", credentials: Self.aliceCredentials)
            try await Self.withFront(backend: pair.url, expectStatus: 401) { front in
                try await front.rateLimit(limit: 1, window: 3600, perUser: true)
                let manifest = "\(front.url)/v2/library/app/manifests/v1"

                let challenge = try await HTTPFetch.get(manifest, headers: Self.accept)
                #expect(challenge.status == 401)
                #expect(challenge.header("WWW-Authenticate")
                    == #"Bearer realm="\#(pair.realm)",service="registry.docker.io",scope="repository:library/app:pull""#)
                #expect(challenge.header("ratelimit-limit") == nil)

                let anonymousToken = try await pair.token(scopes: ["repository:library/app:pull"])
                let anonymous = try await HTTPFetch.get(manifest, headers: Self.bearer(anonymousToken))
                #expect(anonymous.status == 200)
                #expect(anonymous.header("ratelimit-remaining") == "0;w=3600")
                #expect(anonymous.header("docker-ratelimit-source") == "127.0.0.1")
                #expect(try await HTTPFetch.get(manifest, headers: Self.bearer(anonymousToken)).status == 429)

                let aliceToken = try await pair.token(
                    scopes: ["repository:library/app:pull"], user: "alice", password: Self.alicePassword)
                let authenticated = try await HTTPFetch.get(manifest, headers: Self.bearer(aliceToken))
                #expect(authenticated.status == 200)
                #expect(authenticated.header("docker-ratelimit-source") == "alice")
                let state = try await front.rateLimitState()
                #expect(state.perUser && state.users == ["": 1, "alice": 1] && state.used == 1)

                // Through the front, skopeo's token dance works unchanged.
                try await front.rateLimitOff()
                let pulled = try await skopeo.pull(
                    from: "127.0.0.1:\(front.port)", repository: "library/app", reference: "v1", credentials: Self.aliceCredentials)
                #expect(pulled.allDigests == fixture.allDigests)
            }
        }
    }
}
