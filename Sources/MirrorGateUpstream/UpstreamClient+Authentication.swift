import AsyncHTTPClient
import Foundation
import Logging
import MirrorGateConfig
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The upstream side of registry authentication: answering a 401 with Basic credentials or
/// a Bearer token (the OAuth2 password form first, falling back to GET with Basic, as
/// containerd does), tokens cached per upstream, origin, user and scope, and credentials only
/// ever sent to a realm allowed for that upstream.
extension UpstreamClient {
    struct Authorization: Sendable {
        var header: String
        var cacheKey: TokenCache.Key?
    }

    func cachedAuthorization(upstream: Upstream, scope: String?) async -> Authorization? {
        // Bearer tokens are looked up lazily after a challenge; a cached one for the same scope is reused.
        if let key = await lastKey(upstream: upstream, scope: scope), let token = await tokens.token(for: key) {
            return Authorization(header: "Bearer \(token)", cacheKey: key)
        }
        if let basic = basicCredentials(upstream), knownBasic.contains(upstream.id) {
            return Authorization(header: basic, cacheKey: nil)
        }
        return nil
    }




    func lastKey(upstream: Upstream, scope: String?) async -> TokenCache.Key? {
        guard let (realm, service) = realmIndex.realm(for: upstream.id) else { return nil }
        return TokenCache.Key(upstream: upstream, realm: realm, service: service, scope: scope ?? "")
    }

    func basicCredentials(_ upstream: Upstream) -> String? {
        guard let user = upstream.config.username, let password = upstream.config.password else { return nil }
        return "Basic " + Data("\(user):\(password.value)".utf8).base64EncodedString()
    }

    func authenticate(challenges: [AuthChallenge], upstream: Upstream, scope: String?, client: HTTPClient) async throws(UpstreamError) -> Authorization? {
        if let bearer = challenges.first(where: { $0.scheme == "bearer" }), let realm = bearer.parameters["realm"] {
            let service = bearer.parameters["service"] ?? ""
            let key = TokenCache.Key(upstream: upstream, realm: realm, service: service, scope: scope ?? bearer.parameters["scope"] ?? "")
            realmIndex.set(upstream.id, realm: realm, service: service)
            let token: String
            do {
                token = try await tokens.token(for: key) { [self] in
                    let fetched = try await fetchToken(realm: realm, service: service, scope: key.scope, upstream: upstream, client: client)
                    return (fetched.value, fetched.lifetime)
                }
            } catch let error as UpstreamError {
                throw error
            } catch {
                throw .authentication(Self.tokenServiceUnavailable)
            }
            return Authorization(header: "Bearer \(token)", cacheKey: key)
        }
        if challenges.contains(where: { $0.scheme == "basic" }), let basic = basicCredentials(upstream) {
            knownBasic.insert(upstream.id)
            return Authorization(header: basic, cacheKey: nil)
        }
        return nil
    }

    /// What a client (and the upstream's failure record) learns of any failure to get a
    /// token: one message whether the realm was refused, unreachable, closed, or answered
    /// something else, so realm errors tell nobody which ports are open where. The log says
    /// which it was.
    static let tokenServiceUnavailable = "token service unavailable"

    /// Why no token came, for the operator's log.
    struct TokenFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Gets a token from `realm`: with credentials, the OAuth2 password grant (form POST) first,
    /// falling back to GET with Basic on 404, 405, 400 or 401, as containerd does; anonymously,
    /// a plain GET. The realm must pass ``OutboundTargetPolicy`` (with `auth_hosts`), and
    /// credentials are sent only to a realm allowed for this upstream.
    ///
    /// - Throws: ``UpstreamError/authentication(_:)`` with ``tokenServiceUnavailable``.
    func fetchToken(realm: String, service: String, scope: String, upstream: Upstream, client: HTTPClient) async throws(UpstreamError) -> (value: String, lifetime: Duration) {
        do throws(TokenFailure) {
            return try await requestToken(realm: realm, service: service, scope: scope, upstream: upstream, client: client)
        } catch {
            logger.warning("no token from the upstream's token service", metadata: [
                "registry": "\(upstream.registry)", "upstream": "\(upstream.name)",
                "realm_host": "\(URLComponents(string: realm)?.host ?? "?")", "reason": "\(error)",
            ])
            throw .authentication(Self.tokenServiceUnavailable)
        }
    }

    func requestToken(realm: String, service: String, scope: String, upstream: Upstream, client: HTTPClient) async throws(TokenFailure) -> (value: String, lifetime: Duration) {
        guard let components = URLComponents(string: realm), let scheme = components.scheme?.lowercased(),
              scheme == "https" || scheme == "http", let realmHost = components.host, !realmHost.isEmpty
        else {
            throw TokenFailure(description: "the realm is not an http(s) URL")
        }
        let target: OutboundGuard.Target
        do {
            target = try await outbound.admit(realm, for: upstream, listed: upstream.config.authHosts)
        } catch {
            throw TokenFailure(description: "realm refused: \(error) (list its host in auth_hosts to allow it)")
        }
        var credentials: (user: String, password: String)?
        if let user = upstream.config.username, let password = upstream.config.password {
            if !Self.realmMayReceiveCredentials(realm: realm, upstream: upstream) {
                logger.warning("refusing to send credentials to a token realm on a foreign host (another origin than the upstream's, not in auth_hosts); asking anonymously", metadata: [
                    "upstream": "\(upstream.name)", "realm_host": "\(realmHost)",
                ])
            } else if Self.realmDowngrades(realmScheme: scheme, upstream: upstream) {
                logger.warning("refusing to send credentials over http to the token realm of an https upstream; asking anonymously", metadata: [
                    "upstream": "\(upstream.name)", "realm_host": "\(realmHost)",
                ])
            } else {
                credentials = (user, password.value)
            }
        }
        func request(_ url: String) -> HTTPClientRequest {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "User-Agent", value: "mirrorgate/0.1")
            if let host = target.host { request.headers.add(name: "Host", value: host) }
            return request
        }
        if let credentials {
            var form = URLComponents()
            form.queryItems = [
                URLQueryItem(name: "grant_type", value: "password"),
                URLQueryItem(name: "service", value: service),
                URLQueryItem(name: "client_id", value: "mirrorgate"),
                URLQueryItem(name: "access_type", value: "online"),
                URLQueryItem(name: "scope", value: scope),
                URLQueryItem(name: "username", value: credentials.user),
                URLQueryItem(name: "password", value: credentials.password),
            ]
            var post = request(target.url)
            post.method = .POST
            post.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            let body = (form.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
            post.body = .bytes(ByteBuffer(string: body))
            let (status, answer) = try await tokenRequest(post, client: client)
            if status == 200 { return try Self.decodeTokenOrFail(answer) }
            guard [400, 401, 404, 405].contains(status) else {
                throw TokenFailure(description: "answered \(status) to the OAuth2 form")
            }
        }
        guard var query = URLComponents(string: target.url) else { throw TokenFailure(description: "bad token realm") }
        var items = query.queryItems ?? []
        if !service.isEmpty { items.append(URLQueryItem(name: "service", value: service)) }
        if !scope.isEmpty { items.append(URLQueryItem(name: "scope", value: scope)) }
        query.queryItems = items
        guard let url = query.url?.absoluteString else { throw TokenFailure(description: "bad token realm") }
        var get = request(url)
        if let credentials {
            get.headers.add(name: "Authorization", value: "Basic " + Data("\(credentials.user):\(credentials.password)".utf8).base64EncodedString())
        }
        let (status, answer) = try await tokenRequest(get, client: client)
        guard status == 200 else { throw TokenFailure(description: "answered \(status)") }
        return try Self.decodeTokenOrFail(answer)
    }

    func tokenRequest(_ request: HTTPClientRequest, client: HTTPClient) async throws(TokenFailure) -> (Int, ByteBuffer) {
        do {
            let response = try await client.execute(request, timeout: timeout)
            let body = try await GuardedBody(response.body, guards: .init(stallTimeout: bodyTimeout)).collect(upTo: 1 << 20)
            return (Int(response.status.code), body)
        } catch {
            throw TokenFailure(description: "request failed: \(Self.classify(error))")
        }
    }

    private static func decodeTokenOrFail(_ body: ByteBuffer) throws(TokenFailure) -> (value: String, lifetime: Duration) {
        do {
            return try decodeToken(body)
        } catch {
            throw TokenFailure(description: "\(error)")
        }
    }

    /// `{"token"|"access_token", "expires_in", "issued_at"}` → the token and how long it stays
    /// valid from now: `issued_at + expires_in`, at least 60 s.
    /// The longest a token is cached, whatever the token service says.
    static let maxTokenLifetime = Duration.seconds(86_400)

    static func decodeToken(_ body: ByteBuffer, now: Date = Date()) throws(UpstreamError) -> (value: String, lifetime: Duration) {
        struct TokenResponse: Decodable {
            var token: String?
            var access_token: String?
            var expires_in: Seconds?
            var issued_at: String?
        }
        /// `expires_in` as any JSON number (`300`, `300.5`, `1e30`), saturated into an `Int`;
        /// `nil` for anything else, which means the default of 60 s.
        struct Seconds: Decodable {
            var value: Int?
            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let n = try? container.decode(Int.self) {
                    value = n
                } else if let x = try? container.decode(Double.self), x.isFinite {
                    value = x >= 0x1p63 ? .max : x <= -0x1p63 ? .min : Int(x)
                }
            }
        }
        guard let decoded = try? JSONDecoder().decode(TokenResponse.self, from: Data(body.readableBytesView)),
              let token = decoded.token ?? decoded.access_token, !token.isEmpty
        else {
            throw .authentication("token service answered without a token")
        }
        // Clamped before the conversion to milliseconds below: `expires_in` near `Int.max`
        // would trap there, and no registry's token is meant to outlive a day.
        let expiresIn = Double(min(max(decoded.expires_in?.value ?? 60, 60), Int(Self.maxTokenLifetime.components.seconds)))
        var lifetime = expiresIn
        if let issued = decoded.issued_at, let issuedAt = Self.parseTimestamp(issued) {
            lifetime = max(issuedAt.addingTimeInterval(expiresIn).timeIntervalSince(now), 0)
            lifetime = min(lifetime, expiresIn)
        }
        return (token, .milliseconds(Int64(max(lifetime, 1) * 1000)))
    }

    static func parseTimestamp(_ s: String) -> Date? {
        // Foundation's formatters trap on some non-ASCII input ("Incorrect range CFRange"),
        // and no RFC 3339 timestamp has any.
        guard s.utf8.count <= 64, s.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else { return nil }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = formatter.date(from: s) { return d }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: s)
    }

    /// Token realms of well-known registries that live on another host than the registry,
    /// over https: Docker Hub's `registry-1.docker.io` challenges with
    /// `https://auth.docker.io/token` (protocol.md §2 and §3: Docker's `pulls.md` and the
    /// distribution token spec), GitLab.com's `registry.gitlab.com` with
    /// `https://gitlab.com/jwt/auth` (gitlab-org/gitlab-foss#26465). ghcr.io, quay.io, gcr.io,
    /// `*.pkg.dev` and public.ecr.aws name realms on their own origin and need no entry.
    static let wellKnownRealmHosts: [String: String] = [
        "registry-1.docker.io": "auth.docker.io",
        "registry.gitlab.com": "gitlab.com",
    ]

    /// Whether `realm` may receive the upstream's credentials: it is on the upstream's own
    /// origin (scheme, host and port, compared as ``RedirectPolicy`` compares them), its host
    /// is listed in `auth_hosts`, or it is the well-known realm of a well-known registry
    /// (``wellKnownRealmHosts``, https only). Not "the same host": a realm on another port
    /// of it is another service. Not "the same registrable domain": `x.co.uk` and
    /// `evil.co.uk` share their last two labels.
    static func realmMayReceiveCredentials(realm: String, upstream: Upstream) -> Bool {
        guard let components = URLComponents(string: realm), let host = components.host.map(OutboundTargetPolicy.normalized) else { return false }
        if RedirectPolicy(upstream: upstream.config.url, maxHops: 0).carriesCredentials(realm) { return true }
        if upstream.config.authHosts.contains(where: { OutboundTargetPolicy.normalized($0) == host }) { return true }
        let upstreamURL = upstream.config.url
        return components.scheme?.lowercased() == "https" && upstreamURL.scheme.lowercased() == "https"
            && (upstreamURL.port ?? 443) == 443 && (components.port ?? 443) == 443
            && wellKnownRealmHosts[upstreamURL.host.lowercased()] == host
    }

    /// Whether a realm with `realmScheme` would carry an https upstream's credentials over
    /// plain http: the credentials of an https upstream never travel unencrypted, not even to
    /// its own host (the token is then asked for anonymously).
    static func realmDowngrades(realmScheme: String, upstream: Upstream) -> Bool {
        upstream.config.url.scheme.lowercased() == "https" && realmScheme.lowercased() == "http"
    }
}
