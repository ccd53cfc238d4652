import Foundation

/// A registry token issuer for tests that behaves like Docker Hub's `auth.docker.io`:
/// `Fixtures/token_issuer.py` (Python 3 with the `cryptography` package) on
/// `<host>:<free port>`.
///
/// - `GET /token?service=…&scope=repository:NAME:pull[&scope=…]`, optionally with
///   `Authorization: Basic`: 200 `{"token", "access_token", "expires_in", "issued_at"}`
///   (plus `refresh_token` with `offline_token=true` and credentials); wrong credentials
///   give 401 `{"details":"incorrect username or password"}`.
/// - `POST /token`, OAuth2 form: `grant_type=password` (`username`, `password`) or
///   `grant_type=refresh_token`, with `service`, `client_id`, space-separated `scope`,
///   `access_type=offline`; wrong credentials give 401 `{"error":"invalid_grant"}`. With
///   `allowPost: false` every POST gets 404, as realms that only take GET.
/// - Scopes the caller may not have are left out of the token (a partial grant, not an
///   error): anonymous callers get `pull` on ``publicRepositories`` only; a user gets
///   `pull` on those plus their ``User/actions`` on their ``User/repositories``.
/// - Tokens are JWTs (RS256 by default, or ES256) whose `aud` is the requested `service`,
///   `iss` ``issuerName``, `sub` the user ("" when anonymous), valid for ``expiresIn``
///   seconds; the signing key's self-signed certificate is ``certificateURL`` (the
///   registry's `rootcertbundle`) and is sent in the JWT header `x5c` (or, with
///   ``KeyReference/kid``, named by its libtrust key id, as Hub does).
///
/// Note: distribution 2.8 accepts a token up to 60 seconds after its `exp` (its clock
/// leeway), so a short ``expiresIn`` changes what clients do, not what the registry accepts.
///
/// Every request is logged (never a password): ``requests()``. The realm may live on
/// another loopback address than the registry (`host: "127.0.0.2"`), for tests that check
/// credentials are not sent to a foreign realm.
public final class TokenIssuer: Sendable {
    /// A user the issuer knows.
    public struct User: Sendable, Hashable {
        /// The user name.
        public let name: String
        /// The password (Basic credentials on GET, `password` on POST).
        public let password: String
        /// fnmatch patterns of the repositories the user has ``actions`` on (`*` also
        /// matches `/`); default: every repository.
        public let repositories: [String]
        /// The actions granted there; default `pull` and `push`.
        public let actions: [String]

        /// Creates a user.
        public init(_ name: String, password: String, repositories: [String] = ["*"], actions: [String] = ["pull", "push"]) {
            self.name = name
            self.password = password
            self.repositories = repositories
            self.actions = actions
        }
    }

    /// The JWT signature algorithm.
    public enum Algorithm: String, Sendable {
        /// RSA 2048, PKCS#1 v1.5, SHA-256 (what Docker Hub uses).
        case rs256 = "RS256"
        /// ECDSA P-256, SHA-256.
        case es256 = "ES256"
    }

    /// How the JWT header identifies the signing key.
    public enum KeyReference: String, Sendable {
        /// `x5c`: the signing certificate itself (verified against the rootcertbundle).
        case x5c
        /// `kid`: the libtrust key id of a key in the rootcertbundle (Docker Hub's way).
        case kid
    }

    /// One `name=value` of a query string, in the order sent.
    public struct QueryItem: Sendable, Hashable, Decodable, CustomStringConvertible {
        /// The decoded name.
        public let name: String
        /// The decoded value.
        public let value: String

        /// Creates an item.
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }

        public init(from decoder: any Decoder) throws {
            var container = try decoder.unkeyedContainer()
            name = try container.decode(String.self)
            value = try container.decode(String.self)
        }

        public var description: String { "\(name)=\(value)" }
    }

    /// One logged request (`DIR/requests.jsonl`, one JSON object per line).
    public struct Request: Sendable, Hashable, Decodable, CustomStringConvertible {
        /// Seconds since 1970 when it was answered.
        public let time: Double
        /// `GET` or `POST` (other methods are answered 405 and not logged).
        public let method: String
        /// The path, e.g. `/token`.
        public let path: String
        /// The query string's items.
        public let query: [QueryItem]
        /// The `Host` header.
        public let host: String?
        /// The `Authorization` scheme sent: `basic`, `bearer`, `other`, or `nil` if none.
        public let authorization: String?
        /// The user named by Basic credentials or the form's `username` (for a refresh
        /// grant: the token's owner); `nil` if none.
        public let user: String?
        /// A POST's form fields, `password` and `refresh_token` left out; `nil` for GET.
        public let form: [String: String]?
        /// The status answered.
        public let status: Int
        /// Whom the token was issued to ("" anonymous); `nil` if no token was issued.
        public let subject: String?
        /// The scopes granted, e.g. `repository:private/app:pull,push` (an empty list for
        /// a token granting nothing).
        public let granted: [String]

        /// The values of query item `name`.
        public func queryValues(_ name: String) -> [String] { query.filter { $0.name == name }.map(\.value) }
        /// The `service` asked for (query or form).
        public var service: String? { form?["service"] ?? queryValues("service").first }
        /// The scopes asked for: every `scope` query item (split on spaces) or the form's
        /// space-separated `scope`.
        public var scopes: [String] {
            let raw = form.map { [$0["scope"] ?? ""] } ?? queryValues("scope")
            return raw.flatMap { $0.split(separator: " ").map(String.init) }
        }
        /// Whether this was a token request (`/token`).
        public var isTokenRequest: Bool { path == "/token" }

        public var description: String {
            let who = user.map { " user=\($0)" } ?? ""
            let auth = authorization.map { " auth=\($0)" } ?? ""
            return "\(method) \(path) \(method == "POST" ? (form?.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&") ?? "") : query.map(\.description).joined(separator: "&"))\(auth)\(who) -> \(status) granted=\(granted)"
        }
    }

    /// A token endpoint's JSON answer.
    public struct TokenResponse: Sendable, Hashable, Decodable {
        /// `token` (Docker's name).
        public let token: String?
        /// `access_token` (OAuth2's name).
        public let accessToken: String?
        /// `expires_in` in seconds.
        public let expiresIn: Int?
        /// `issued_at`, RFC 3339.
        public let issuedAt: String?
        /// `refresh_token`, only when an offline token was asked for.
        public let refreshToken: String?

        enum CodingKeys: String, CodingKey {
            case token
            case accessToken = "access_token"
            case expiresIn = "expires_in"
            case issuedAt = "issued_at"
            case refreshToken = "refresh_token"
        }

        /// Decodes a 200 answer; throws for any other status.
        public init(_ response: HTTPFetch.Response) throws {
            guard response.status == 200 else {
                throw ManagedProcess.Failure("token endpoint answered \(response.status): \(response.text)")
            }
            self = try JSONDecoder().decode(Self.self, from: response.body)
        }

        /// The bearer token (`token`, else `access_token`).
        public var bearer: String? { token ?? accessToken }
    }

    /// The claims of a JWT (read without checking the signature).
    public struct TokenClaims: Sendable, Hashable {
        /// `iss`.
        public let issuer: String?
        /// `sub` ("" anonymous).
        public let subject: String?
        /// `aud`.
        public let audience: String?
        /// `exp`, `nbf`, `iat`.
        public let expiresAt: Int?, notBefore: Int?, issuedAt: Int?
        /// `access`, as scopes (`repository:NAME:pull,push`).
        public let access: [String]
        /// The JOSE header's `alg`, and whether it carries `x5c` / `kid`.
        public let algorithm: String?, hasX5C: Bool, keyID: String?

        /// Decodes `jwt`; `nil` if it is not a JWT.
        public init?(jwt: String) {
            let parts = jwt.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3,
                  let header = Self.json(parts[0]), let payload = Self.json(parts[1])
            else { return nil }
            issuer = payload["iss"] as? String
            subject = payload["sub"] as? String
            audience = (payload["aud"] as? String) ?? (payload["aud"] as? [String])?.first
            expiresAt = payload["exp"] as? Int
            notBefore = payload["nbf"] as? Int
            issuedAt = payload["iat"] as? Int
            access = (payload["access"] as? [[String: Any]] ?? []).map {
                "\($0["type"] as? String ?? ""):\($0["name"] as? String ?? ""):\(($0["actions"] as? [String] ?? []).joined(separator: ","))"
            }
            algorithm = header["alg"] as? String
            hasX5C = header["x5c"] != nil
            keyID = header["kid"] as? String
        }

        private static func json(_ part: Substring) -> [String: Any]? {
            var base64 = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
            guard let data = Data(base64Encoded: base64) else { return nil }
            return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        }
    }

    /// The address it listens on (`127.0.0.1`, or e.g. `127.0.0.2` for a foreign realm).
    public let host: String
    /// The TCP port.
    public let port: Int
    /// The users it knows.
    public let users: [User]
    /// fnmatch patterns of the repositories anyone may pull.
    public let publicRepositories: [String]
    /// `expires_in` of every token, in seconds.
    public let expiresIn: Int
    /// Whether `POST /token` is served (otherwise 404).
    public let allowPost: Bool
    /// The service name the registry is configured with (`auth.token.service`).
    public let service: String
    /// The issuer name put in `iss` (`auth.token.issuer`).
    public let issuerName: String
    /// The signature algorithm.
    public let algorithm: Algorithm
    /// How the JWT header names the key.
    public let keyReference: KeyReference
    /// The temporary directory with the certificate, key, config and log.
    public let directory: TemporaryDirectory
    /// The signing key's self-signed certificate (PEM): the registry's `rootcertbundle`.
    public let certificateURL: URL
    /// The request log, one JSON object per line.
    public let logURL: URL
    /// The Python process.
    public let process: ManagedProcess

    /// `http://<host>:<port>`.
    public var url: String { "http://\(host):\(port)" }
    /// `http://<host>:<port>/token`, the realm.
    public var realm: String { "\(url)/token" }
    /// The `auth` setting for a registry that trusts this issuer.
    public var registryAuth: UpstreamRegistry.Auth {
        .token(realm: realm, service: service, issuer: issuerName, rootCertBundle: certificateURL)
    }

    /// Starts an issuer and waits until it answers.
    ///
    /// - Parameters:
    ///   - users: Known users (Basic on GET, `username`/`password` on POST).
    ///   - publicRepositories: fnmatch patterns anyone (anonymous too) may pull.
    ///   - expiresIn: Token lifetime in seconds (`expires_in`, JWT `exp`).
    ///   - allowPost: Serve the OAuth2 `POST /token`; `false` answers 404 to every POST.
    ///   - host: The loopback address to listen on; `127.0.0.2` makes a realm on another
    ///     host than a registry on `127.0.0.1` (Linux routes all of 127/8 to loopback).
    ///   - service: `auth.token.service` (Docker Hub: `registry.docker.io`).
    ///   - issuer: `iss` and `auth.token.issuer` (Docker Hub: `auth.docker.io`).
    ///   - algorithm: RS256 (default) or ES256.
    ///   - keyReference: `x5c` (default) or `kid` in the JWT header.
    public static func start(
        users: [User] = [],
        publicRepositories: [String] = [],
        expiresIn: Int = 300,
        allowPost: Bool = true,
        host: String = "127.0.0.1",
        service: String = "registry.docker.io",
        issuer: String = "auth.docker.io",
        algorithm: Algorithm = .rs256,
        keyReference: KeyReference = .x5c
    ) async throws -> TokenIssuer {
        var lastError: any Error = ManagedProcess.Failure("token issuer: not started")
        for _ in 0..<3 {
            let candidate = try TokenIssuer(
                users: users, publicRepositories: publicRepositories, expiresIn: expiresIn, allowPost: allowPost,
                host: host, port: FreePort.allocate(), service: service, issuerName: issuer,
                algorithm: algorithm, keyReference: keyReference)
            do {
                try await candidate.process.waitForHTTP("\(candidate.url)/_issuer/health", expectStatus: 200, timeout: .seconds(20))
                return candidate
            } catch {
                lastError = error
                await candidate.stop()
                // Retry only if another process took the port in the meantime.
                guard candidate.process.stdoutText().contains("Address already in use") else { throw error }
            }
        }
        throw lastError
    }

    /// Starts an issuer, runs `body`, and stops the issuer whether or not `body` throws.
    public static func with<T>(
        users: [User] = [],
        publicRepositories: [String] = [],
        expiresIn: Int = 300,
        allowPost: Bool = true,
        host: String = "127.0.0.1",
        _ body: (TokenIssuer) async throws -> T
    ) async throws -> T {
        let issuer = try await start(
            users: users, publicRepositories: publicRepositories, expiresIn: expiresIn, allowPost: allowPost, host: host)
        do {
            let result = try await body(issuer)
            await issuer.stop()
            return result
        } catch {
            await issuer.stop()
            throw error
        }
    }

    private init(
        users: [User], publicRepositories: [String], expiresIn: Int, allowPost: Bool, host: String, port: Int,
        service: String, issuerName: String, algorithm: Algorithm, keyReference: KeyReference
    ) throws {
        self.users = users
        self.publicRepositories = publicRepositories
        self.expiresIn = expiresIn
        self.allowPost = allowPost
        self.host = host
        self.port = port
        self.service = service
        self.issuerName = issuerName
        self.algorithm = algorithm
        self.keyReference = keyReference
        directory = try TemporaryDirectory(prefix: "token-issuer")
        certificateURL = directory.appending("state/issuer.crt")
        logURL = directory.appending("state/requests.jsonl")
        let configURL = directory.appending("users.json")
        var userTable: [String: Any] = [:]
        for user in users {
            userTable[user.name] = ["password": user.password, "repositories": user.repositories, "actions": user.actions]
        }
        let config: [String: Any] = ["users": userTable, "public": publicRepositories]
        try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]).write(to: configURL)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appending(path: "Fixtures/token_issuer.py")
        guard let python = ManagedProcess.which("python3") else { throw ManagedProcess.Failure("python3 is not installed") }
        var arguments = [
            script.path, "--listen", "\(host):\(port)", "--state-dir", directory.appending("state").path,
            "--config", configURL.path, "--service", service, "--issuer", issuerName,
            "--expires-in", String(expiresIn), "--alg", algorithm.rawValue, "--key-ref", keyReference.rawValue,
        ]
        if !allowPost { arguments.append("--no-post") }
        process = try ManagedProcess(
            name: "token-issuer", executable: python, arguments: arguments,
            stdoutLog: directory.appending("issuer.log"))
    }

    /// Stops the issuer (SIGTERM, then SIGKILL) by its PID and waits for it. Idempotent.
    public func stop() async {
        await process.stop()
    }

    // MARK: - Log

    /// Every request so far, oldest first (read from ``logURL``; an entry is written
    /// before its answer is sent).
    public func requests() -> [Request] {
        let text = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        let decoder = JSONDecoder()
        return text.split(separator: "\n").compactMap { try? decoder.decode(Request.self, from: Data($0.utf8)) }
    }

    /// The requests to `/token`.
    public func tokenRequests() -> [Request] { requests().filter(\.isTokenRequest) }

    /// The raw log text, e.g. to check that no password ever appears in it.
    public func rawLog() -> String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// Empties the log.
    public func clearRequests() async throws {
        let response = try await HTTPFetch.request("\(url)/_issuer/clear", method: "POST")
        guard response.status == 200 else { throw ManagedProcess.Failure("issuer: clear answered \(response.status)") }
    }

    /// Waits until at least `count` logged requests satisfy `predicate`, and returns them.
    @discardableResult
    public func waitForRequests(
        count: Int = 1,
        timeout: Duration = .seconds(5),
        where predicate: (Request) -> Bool = { _ in true }
    ) async throws -> [Request] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let matching = requests().filter(predicate)
            if matching.count >= count { return matching }
            if ContinuousClock.now >= deadline {
                throw ManagedProcess.Failure(
                    "token issuer: expected \(count) matching request(s), found \(matching.count); log:\n"
                        + requests().map(\.description).joined(separator: "\n"))
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: - Asking for tokens (as a client would)

    /// `GET /token?service=…&scope=…` (one `scope` item per scope), with Basic
    /// credentials if `user` is given.
    public func getToken(
        scopes: [String],
        service: String? = nil,
        user: String? = nil,
        password: String? = nil,
        offline: Bool = false,
        clientID: String? = nil
    ) async throws -> HTTPFetch.Response {
        var items = [("service", service ?? self.service)] + scopes.map { ("scope", $0) }
        if offline { items.append(("offline_token", "true")) }
        if let clientID { items.append(("client_id", clientID)) }
        var headers: [(String, String)] = []
        if let user {
            headers.append(("Authorization", "Basic " + Data("\(user):\(password ?? "")".utf8).base64EncodedString()))
        }
        return try await HTTPFetch.get("\(realm)?\(Self.formEncode(items))", headers: headers)
    }

    /// `POST /token` with the OAuth2 password grant (space-separated `scope`).
    public func postToken(
        scopes: [String],
        user: String,
        password: String,
        service: String? = nil,
        clientID: String = "mirrorgate-tests",
        offline: Bool = false
    ) async throws -> HTTPFetch.Response {
        var items = [
            ("grant_type", "password"), ("username", user), ("password", password),
            ("service", service ?? self.service), ("client_id", clientID), ("scope", scopes.joined(separator: " ")),
        ]
        if offline { items.append(("access_type", "offline")) }
        return try await post(items)
    }

    /// `POST /token` with the OAuth2 refresh-token grant.
    public func refreshToken(
        _ refreshToken: String,
        scopes: [String],
        service: String? = nil,
        clientID: String = "mirrorgate-tests"
    ) async throws -> HTTPFetch.Response {
        try await post([
            ("grant_type", "refresh_token"), ("refresh_token", refreshToken), ("service", service ?? self.service),
            ("client_id", clientID), ("scope", scopes.joined(separator: " ")),
        ])
    }

    private func post(_ items: [(String, String)]) async throws -> HTTPFetch.Response {
        try await HTTPFetch.request(
            realm, method: "POST", headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: Data(Self.formEncode(items).utf8))
    }

    /// `application/x-www-form-urlencoded` (also fine as a query string).
    public static func formEncode(_ items: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        func encode(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s }
        return items.map { "\(encode($0.0))=\(encode($0.1))" }.joined(separator: "&")
    }
}

/// A token-auth registry: a ``TokenIssuer`` and a `docker-registry` that trusts it
/// (`auth.token` with the issuer's realm, service, issuer name and certificate).
///
/// The registry answers 401 `WWW-Authenticate: Bearer realm="<issuer.realm>",
/// service="registry.docker.io",scope="repository:NAME:pull"` to requests without a
/// valid token (and `/v2/` included), as Docker Hub does.
public final class TokenAuthRegistry: Sendable {
    /// The issuer (realm).
    public let issuer: TokenIssuer
    /// The registry.
    public let registry: UpstreamRegistry

    /// The registry's `http://127.0.0.1:<port>`.
    public var url: String { registry.url }
    /// The registry's `127.0.0.1:<port>`.
    public var hostPort: String { registry.hostPort }
    /// The issuer's realm URL.
    public var realm: String { issuer.realm }

    /// Starts an issuer (see ``TokenIssuer/start(users:publicRepositories:expiresIn:allowPost:host:service:issuer:algorithm:keyReference:)``)
    /// and a registry that trusts it; on failure, stops whatever was started.
    ///
    /// - Parameter realmHost: The issuer's address: `127.0.0.1`, or `127.0.0.2` for a
    ///   realm on another host than the registry.
    public static func start(
        users: [TokenIssuer.User] = [],
        publicRepositories: [String] = [],
        expiresIn: Int = 300,
        allowPost: Bool = true,
        realmHost: String = "127.0.0.1",
        mode: UpstreamRegistry.Mode = .local,
        name: String = "token-registry",
        algorithm: TokenIssuer.Algorithm = .rs256,
        keyReference: TokenIssuer.KeyReference = .x5c
    ) async throws -> TokenAuthRegistry {
        let issuer = try await TokenIssuer.start(
            users: users, publicRepositories: publicRepositories, expiresIn: expiresIn, allowPost: allowPost,
            host: realmHost, algorithm: algorithm, keyReference: keyReference)
        do {
            let registry = try await UpstreamRegistry.start(mode: mode, name: name, tokenIssuer: issuer)
            return TokenAuthRegistry(issuer: issuer, registry: registry)
        } catch {
            await issuer.stop()
            throw error
        }
    }

    /// Starts both, runs `body`, and stops both whether or not `body` throws.
    public static func with<T>(
        users: [TokenIssuer.User] = [],
        publicRepositories: [String] = [],
        expiresIn: Int = 300,
        allowPost: Bool = true,
        realmHost: String = "127.0.0.1",
        _ body: (TokenAuthRegistry) async throws -> T
    ) async throws -> T {
        let pair = try await start(
            users: users, publicRepositories: publicRepositories, expiresIn: expiresIn, allowPost: allowPost,
            realmHost: realmHost)
        do {
            let result = try await body(pair)
            await pair.stop()
            return result
        } catch {
            await pair.stop()
            throw error
        }
    }

    private init(issuer: TokenIssuer, registry: UpstreamRegistry) {
        self.issuer = issuer
        self.registry = registry
    }

    /// Stops the registry and the issuer by PID. Idempotent.
    public func stop() async {
        await registry.stop()
        await issuer.stop()
    }

    /// A token from the issuer for `scopes` (GET, with Basic credentials if given).
    public func token(scopes: [String], user: String? = nil, password: String? = nil) async throws -> String {
        let response = try await issuer.getToken(scopes: scopes, user: user, password: password)
        guard let token = try TokenIssuer.TokenResponse(response).bearer else {
            throw ManagedProcess.Failure("token issuer answered without a token: \(response.text)")
        }
        return token
    }
}

extension UpstreamRegistry {
    /// Starts a registry with token auth against `tokenIssuer` (``TokenIssuer/registryAuth``):
    /// `auth.token.{realm, service, issuer, rootcertbundle}`.
    public static func start(
        mode: Mode = .local,
        name: String = "token-registry",
        port: Int? = nil,
        extraYAML: String = "",
        tokenIssuer: TokenIssuer
    ) async throws -> UpstreamRegistry {
        try await start(mode: mode, name: name, port: port, extraYAML: extraYAML, auth: tokenIssuer.registryAuth)
    }
}
