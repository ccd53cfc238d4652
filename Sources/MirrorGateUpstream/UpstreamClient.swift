import AsyncHTTPClient
import Foundation
import Logging
import MirrorGateConfig
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Sends requests to upstream registries: pooled HTTP/1.1 and HTTP/2 connections through
/// AsyncHTTPClient, the anonymous Bearer token flow and Basic credentials, and redirects
/// followed by hand (``RedirectPolicy``) so `Authorization` never leaves the upstream's
/// origin and https is never downgraded.
public final class UpstreamClient: Sendable {
    /// A request to one upstream, relative to its `/v2/`.
    public struct Request: Sendable {
        public var method: HTTPMethod
        /// Path after `/v2/`, already carrying the upstream's prefix (`library/alpine/manifests/latest`).
        public var path: String
        public var query: String?
        public var headers: HTTPHeaders
        /// Repository (on the upstream) used as the token scope.
        public var repository: String?
        /// Answer a 401 challenge with a token or credentials (off for health probes).
        public var authenticate: Bool

        public init(method: HTTPMethod, path: String, query: String? = nil, headers: HTTPHeaders = [:], repository: String?, authenticate: Bool = true) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.repository = repository
            self.authenticate = authenticate
        }
    }

    /// Redirect hops followed at most (see ``RedirectPolicy``).
    public static let maxRedirects = 5

    let verifyingClient: HTTPClient
    let insecureClient: HTTPClient
    let timeout: TimeAmount
    /// How long any body may go without a byte (`health.timeout`).
    let bodyTimeout: Duration
    let tokens = TokenCache()
    let realmIndex = RealmIndex()
    let knownBasic = KnownBasic()
    let outbound = OutboundGuard()
    let logger: Logger

    /// - Parameter timeout: connect and first-byte timeout (`health.timeout`).
    public init(timeout: Duration, logger: Logger) {
        let amount = TimeAmount.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        self.timeout = amount
        self.bodyTimeout = timeout
        self.logger = logger
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: amount)
        configuration.decompression = .disabled
        configuration.httpVersion = .automatic
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        // A refused connection must fail now so the next upstream is tried at once; by default
        // the pool retries connecting until the request's deadline (a whole health.timeout).
        configuration.connectionPool.retryConnectionEstablishment = false
        verifyingClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        var insecure = configuration
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        insecure.tlsConfiguration = tls
        insecureClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: insecure)
    }

    public func shutdown() async throws {
        try await verifyingClient.shutdown()
        try await insecureClient.shutdown()
        try await outbound.shutdown()
    }

    /// Sends `request` to `upstream`, authenticating when challenged and following redirects.
    /// Any HTTP status is returned as a response; only transport failures throw.
    public func send(_ request: Request, to upstream: Upstream) async throws(UpstreamError) -> UpstreamResponse {
        let client = upstream.config.skipTLSVerify ? insecureClient : verifyingClient
        var url = upstream.config.url.origin + upstream.config.url.basePath + "/v2/" + request.path
        if let query = request.query, !query.isEmpty { url += "?" + query }

        let scope = request.repository.map { "repository:\($0):pull" }
        let redirects = RedirectPolicy(upstream: upstream.config.url, maxHops: Self.maxRedirects)
        var authorization = await cachedAuthorization(upstream: upstream, scope: scope)
        var retriedAuth = false
        var hops = 0
        var currentURL = url
        // Where the current hop connects: the URL itself, or a redirect target pinned to the
        // address OutboundGuard checked.
        var target = OutboundGuard.Target(url: url, host: nil)
        while true {
            var outgoing = HTTPClientRequest(url: target.url)
            outgoing.method = request.method
            outgoing.headers = request.headers
            outgoing.headers.replaceOrAdd(name: "User-Agent", value: "mirrorgate/0.1")
            if let host = target.host { outgoing.headers.replaceOrAdd(name: "Host", value: host) }
            let sameOrigin = hops == 0 || redirects.carriesCredentials(currentURL)
            if sameOrigin, let authorization { outgoing.headers.replaceOrAdd(name: "Authorization", value: authorization.header) }

            let response: HTTPClientResponse
            do {
                response = try await client.execute(outgoing, timeout: timeout)
            } catch {
                throw Self.classify(error)
            }
            let status = Int(response.status.code)

            if status == 401, sameOrigin, !retriedAuth, request.authenticate {
                retriedAuth = true
                let challenges = response.headers["www-authenticate"].flatMap { AuthChallenge.parse($0) }
                _ = try? await GuardedBody(response.body, guards: .init(stallTimeout: bodyTimeout)).collect(upTo: 1 << 20)
                if let old = authorization, let key = old.cacheKey { await tokens.drop(key) }
                if let fresh = try await authenticate(challenges: challenges, upstream: upstream, scope: scope, client: client) {
                    authorization = fresh
                    continue
                }
                // Nothing to answer the challenge with: hand the 401 on.
                return UpstreamResponse(upstream: upstream, status: status, headers: response.headers, body: Self.emptyBody(), bodyTimeout: bodyTimeout)
            }

            if RedirectPolicy.statuses.contains(status), request.method == .GET || request.method == .HEAD {
                _ = try? await GuardedBody(response.body, guards: .init(stallTimeout: bodyTimeout)).collect(upTo: 1 << 20)
                currentURL = try redirects.next(
                    after: currentURL, status: status, location: response.headers.first(name: "location"), hopsSoFar: hops)
                hops += 1
                do {
                    target = try await outbound.admit(currentURL, for: upstream, listed: upstream.config.redirectHosts)
                } catch {
                    logger.warning("refusing to follow a redirect to a non-public address", metadata: [
                        "registry": "\(upstream.registry)", "upstream": "\(upstream.name)", "reason": "\(error)",
                    ])
                    // The client sees neither the address nor whether the name resolved.
                    throw .redirect("target is not a public address (list its host in redirect_hosts to allow it)")
                }
                continue
            }

            return UpstreamResponse(upstream: upstream, status: status, headers: response.headers, body: response.body, bodyTimeout: bodyTimeout)
        }
    }

    static func emptyBody() -> HTTPClientResponse.Body {
        HTTPClientResponse(status: .ok).body
    }

    /// Maps AsyncHTTPClient and NIO errors to ``UpstreamError``, with messages that name
    /// no host, address, port or URL: they reach clients in error answers, where the upstream
    /// is named by its configured name (a redirect target's address, or a URL with userinfo in
    /// a hostile `Location`, is nobody's business there).
    public static func classify(_ error: any Error) -> UpstreamError {
        if let e = error as? UpstreamError { return e }
        if let e = error as? HTTPClientError {
            // `shortDescription` carries no associated values (`invalidHeaderFieldValues`
            // would otherwise quote header values, `Authorization` among them).
            switch e {
            case .connectTimeout, .deadlineExceeded, .readTimeout: return .timeout(e.shortDescription.lowercased())
            default: return .connection(e.shortDescription.lowercased())
            }
        }
        if error is CancellationError { return .timeout("cancelled") }
        // NIO's IOError reads "connection reset (error set): Connection refused) (errno: 111)".
        if let e = error as? IOError { return .connection(Self.reason(e)) }
        // Its description names the host, each address tried and the port.
        if let e = error as? NIOConnectionError {
            if e.dnsAError != nil || e.dnsAAAAError != nil { return .connection("name does not resolve") }
            let reasons = Set(e.connectionErrors.map { ($0.error as? IOError).map(Self.reason) ?? "could not connect" })
            return .connection(reasons.sorted().joined(separator: ", ").ifEmpty("could not connect"))
        }
        if error is NIOSSLError || error is NIOSSLExtraError { return .connection("TLS handshake failed") }
        return .connection(UpstreamError.describe(unknown: error))
    }

    private static func reason(_ error: IOError) -> String {
        String(cString: strerror(error.errnoCode)).lowercased()
    }
}
