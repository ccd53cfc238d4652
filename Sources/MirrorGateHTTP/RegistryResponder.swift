import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MirrorGateConfig
import MirrorGateCore
import NIOCore
import RegistryModel

/// The HTTP front: the pull side of the distribution API on one port, for every client.
///
/// One responder rather than Hummingbird's router: repository names have any number of
/// components, and the endpoint is found by parsing the path from its end.
public struct RegistryResponder<Context: RequestContext>: HTTPResponder {
    let service: PullService
    let namespaces: NamespaceRouter
    let logger: Logger
    /// Client authentication (`auth.htpasswd`); nil when the gateway is open.
    let authenticator: InboundAuthenticator?
    /// Serves `/metrics` when set.
    let metrics: MetricsExporter?
    /// Whether `/healthz`, `/readyz` and `/metrics` are served here (false with `admin_listen`).
    let servesAdmin: Bool
    /// What `/readyz` says (it fails once a graceful stop begins).
    let readiness: Readiness
    /// Which users may pull through which registry, and which repositories may be pulled.
    let rules: AccessRules
    /// The record of client manifest requests; nil keeps none.
    let ledger: PullLedger?
    /// Whether the status page and its JSON are served here (false with `admin_listen` and no
    /// `auth`: they go to the admin listener only).
    let servesStatus: Bool

    public init(
        service: PullService, namespaces: NamespaceRouter, logger: Logger,
        authenticator: InboundAuthenticator? = nil, metrics: MetricsExporter? = nil, servesAdmin: Bool = true,
        rules: AccessRules, ledger: PullLedger? = nil, servesStatus: Bool = true,
        readiness: Readiness = Readiness()
    ) {
        self.readiness = readiness
        self.service = service
        self.namespaces = namespaces
        self.logger = logger
        self.authenticator = authenticator
        self.metrics = metrics
        self.servesAdmin = servesAdmin
        self.rules = rules
        self.ledger = ledger
        self.servesStatus = servesStatus
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        var log = RequestLog(id: Self.requestID(request.headers[.xRequestID]), method: request.method.rawValue, path: request.uri.path)
        var response: Response
        do {
            // Probes stay open; `/metrics` on the main listener follows the same auth as the rest.
            if request.uri.path == "/metrics" { try await authorize(request, context: context, log: &log) }
            if servesAdmin, let admin = try await AdminEndpoints.respond(request, service: service, metrics: metrics, readiness: readiness, log: &log) {
                response = admin
            } else {
                try await authorize(request, context: context, log: &log)
                response = try await route(request, context: context, log: &log)
            }
        } catch let error as RegistryError {
            response = Self.errorResponse(error, method: request.method)
            log.error = error.description
        } catch {
            let wrapped = RegistryError(Self.code(for: log.kind), status: 500, "internal error")
            logger.error("unexpected error", metadata: ["error": "\(error)", "path": "\(request.uri.path)", "request_id": "\(log.id)"])
            response = Self.errorResponse(wrapped, method: request.method)
            log.error = "\(error)"
        }
        log.status = response.status.code
        response.headers[.xRequestID] = log.id
        ResponseHardening.apply(to: &response.headers)
        return Self.logged(response, log: log, logger: logger, activity: service.activity, ledger: ledger)
    }

    /// Defers the log line (and the ledger record) until the body has been sent, counting its bytes.
    static func logged(_ response: Response, log: RequestLog, logger: Logger, activity: GatewayActivity, ledger: PullLedger?) -> Response {
        if response.body.contentLength == 0 {
            log.finish(bytes: 0, aborted: nil, logger: logger, activity: activity, ledger: ledger)
            return response
        }
        var response = response
        let body = response.body
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            let counter = ByteCounter()
            do {
                try await body.write(CountingWriter(base: writer, counter: counter))
            } catch {
                log.finish(bytes: counter.total, sentWith: counter.sentWith, aborted: "\(error)", logger: logger, activity: activity, ledger: ledger)
                throw error
            }
            log.finish(bytes: counter.total, sentWith: counter.sentWith, aborted: nil, logger: logger, activity: activity, ledger: ledger)
        }
        return response
    }

    /// The client's `X-Request-ID` when it is a sane token, else a new random one.
    static func requestID(_ offered: String?) -> String {
        if let offered, (1...64).contains(offered.utf8.count),
           offered.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E })
        {
            return offered
        }
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() as UInt64
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// With `auth:` configured, everything but the health endpoints needs valid credentials.
    private func authorize(_ request: Request, context: Context, log: inout RequestLog) async throws(RegistryError) {
        guard let authenticator else { return }
        let client = AuthFailureLimiter.clientKey((context as? any RemoteAddressRequestContext)?.remoteAddress)
        switch await authenticator.authenticate(authorization: request.headers[.authorization], client: client) {
        case .authenticated(let user):
            log.user = user
        case .rejected:
            throw RegistryError(
                .unauthorized,
                request.headers[.authorization] == nil ? "authentication required" : "invalid user name or password",
                headers: [("WWW-Authenticate", authenticator.challenge)])
        case .throttled(let wait):
            let seconds = max(1, wait.components.seconds + (wait.components.attoseconds > 0 ? 1 : 0))
            throw RegistryError(
                .tooManyRequests, "too many failed authentication attempts from this address; retry in \(seconds) s",
                headers: [("Retry-After", String(seconds))])
        case .busy:
            throw RegistryError(
                .tooManyRequests, "too many password checks in progress; retry shortly", headers: [("Retry-After", "1")])
        }
    }

    private func route(_ request: Request, context: Context, log: inout RequestLog) async throws -> Response {
        let rawPath = Substring(request.uri.path)
        if servesStatus, let status = try await StatusEndpoints.respond(request, service: service, rules: rules, ledger: ledger, log: &log) {
            return status
        }
        var namespace = try Self.namespaceParameter(request.uri.queryParameters["ns"])
        var apiPath = rawPath
        // containerd host paths: `[host."http://gateway:5000/ghcr.io"]` requests `/ghcr.io/v2/...`.
        if !rawPath.hasPrefix("/v2"), let v2 = rawPath.range(of: "/v2"), rawPath[v2.upperBound...].isEmpty || rawPath[v2.upperBound...].hasPrefix("/") {
            let host = rawPath[rawPath.index(after: rawPath.startIndex)..<v2.lowerBound]
            if namespaces.registryKeys.contains(String(host)) {
                namespace = namespace ?? String(host)
                apiPath = rawPath[v2.lowerBound...]
            }
        }
        guard let path = RegistryPath(path: apiPath) else {
            throw RegistryError(.unsupported, status: 404, "no such endpoint: \(rawPath.prefix(200))")
        }
        var headers: HTTPFields = [.dockerDistributionAPIVersion: "registry/2.0"]
        if let namespace { headers[.ociNamespace] = namespace }

        let isRead = request.method == .get || request.method == .head
        switch path.endpoint {
        case .base: log.route = "base"
        case .manifest: log.route = "manifest"; log.kind = .manifest
        case .blob: log.route = "blob"; log.kind = .blob
        case .tagsList: log.route = "tags"
        case .referrers: log.route = "referrers"
        case .catalog: log.route = "catalog"
        case .upload: log.route = "upload"
        }
        switch path.endpoint {
        case .base:
            guard isRead else { throw Self.readOnly(request.method) }
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: request.method == .head ? .init() : .init(byteBuffer: ByteBuffer(string: "{}")))
        case .catalog:
            throw RegistryError(.unsupported, "the catalog is not available on a mirror")
        case .upload:
            throw Self.readOnly(request.method)
        default:
            break
        }
        guard isRead else { throw Self.readOnly(request.method) }

        let (registry, name) = try namespaces.route(repository: path.repository, namespace: namespace)
        log.registry = registry
        log.repository = name.value
        // Before the cache or any upstream: a denied request learns nothing, not even what is
        // cached, by tag or by digest.
        if let refusal = rules.refusal(user: log.user, client: Self.client(user: log.user, context: context), registry: registry, repository: name.value) {
            log.denied = refusal.rule
            throw refusal.error
        }

        switch path.endpoint {
        case .manifest(let ref):
            let reference = try Reference(parsing: ref)
            log.reference = ref
            if ledger != nil {
                log.client = Self.client(user: log.user, context: context)
                log.userAgent = request.headers[.userAgent]
            }
            return try await manifest(request, registry: registry, name: name, reference: reference, headers: headers, log: &log)
        case .blob(let ref):
            let digest = try Digest(parsing: ref)
            log.reference = ref
            return try await blob(request, context: context, registry: registry, name: name, digest: digest, headers: headers, log: &log)
        case .tagsList:
            guard request.method == .get else { throw RegistryError(.unsupported, "use GET for tags/list") }
            return try await tagsList(request, registry: registry, name: name, namespace: namespace, headers: headers, log: &log)
        case .referrers(let ref):
            guard request.method == .get else { throw RegistryError(.unsupported, "use GET for referrers") }
            let digest = try Digest(parsing: ref)
            log.reference = ref
            var query: String?
            if let type = request.uri.queryParameters["artifactType"] {
                query = "artifactType=" + (String(type).addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? "")
            }
            let answer = try await service.passThrough(registry: registry, name: name, listing: .referrers(digest), query: query)
            log.upstream = answer.source
            log.skipped = answer.skipped
            headers[.contentType] = answer.contentType ?? MediaType.ociIndex
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: answer.body))
        case .base, .catalog, .upload:
            preconditionFailure("handled above")
        }
    }

    // MARK: Manifests

    private func manifest(_ request: Request, registry: String, name: RepositoryName, reference: Reference, headers: HTTPFields, log: inout RequestLog) async throws -> Response {
        let accept = request.headers[values: .accept]
        let manifest = try await service.manifest(registry: registry, name: name, reference: reference, accept: accept)
        log.upstream = manifest.source
        log.skipped = manifest.skipped
        log.digest = manifest.digest.description
        log.cache = manifest.staleWarning != nil ? .stale : manifest.fetched ? .miss : manifest.revalidation.cacheResult
        log.spend = manifest.spend
        var headers = headers
        let etag = "\"\(manifest.digest)\""
        headers[.contentType] = manifest.mediaType
        headers[.dockerContentDigest] = manifest.digest.description
        headers[.eTag] = etag
        if let warning = manifest.staleWarning { headers[.warning] = warning }
        if let inm = request.headers[.ifNoneMatch], inm.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag || $0.trimmingCharacters(in: .whitespaces) == "*" }) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentLength] = String(manifest.bytes.readableBytes)
        if request.method == .head {
            return Response(status: .ok, headers: headers, body: .init())
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: manifest.bytes))
    }

    // MARK: Tags

    private func tagsList(_ request: Request, registry: String, name: RepositoryName, namespace: String?, headers: HTTPFields, log: inout RequestLog) async throws -> Response {
        var query: [String] = []
        if let n = request.uri.queryParameters["n"] {
            guard let count = Int(n), count >= 0 else { throw RegistryError(.unsupported, status: 400, "n must be a non-negative integer") }
            query.append("n=\(count)")
        }
        if let last = request.uri.queryParameters["last"] {
            query.append("last=" + (String(last).addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? ""))
        }
        let answer = try await service.passThrough(registry: registry, name: name, listing: .tags, query: query.isEmpty ? nil : query.joined(separator: "&"))
        log.upstream = answer.source
        log.skipped = answer.skipped
        var headers = headers
        headers[.contentType] = "application/json"
        if var next = answer.nextQuery {
            // Re-root the upstream's Link at the gateway, in the form this client used.
            if let namespace, !next.contains("ns=") {
                next += "&ns=" + (namespace.addingPercentEncoding(withAllowedCharacters: .urlQueryValueAllowed) ?? "")
            }
            headers[.link] = "<\(request.uri.path)?\(next)>; rel=\"next\""
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: answer.body))
    }

    /// containerd's `?ns=`: a registry host by the rule registry keys follow, lowercased (it is
    /// echoed in `OCI-Namespace` and logged); anything else is 400 `NAME_INVALID`, never echoed.
    static func namespaceParameter(_ value: Substring?) throws(RegistryError) -> String? {
        guard let value, !value.isEmpty else { return nil }
        let host = value.lowercased()
        guard ConfigLoader.isRegistryHost(host) else {
            throw RegistryError(.nameInvalid, status: 400, "the ns parameter is not a registry host name (such as docker.io or registry.local:5000)")
        }
        return host
    }

    /// Who a request is from, as the ledger and the denials name it: the inbound user, else
    /// the client's address.
    static func client(user: String?, context: Context) -> String {
        if let user { return user }
        guard let address = (context as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress else { return "unknown" }
        // An IPv4 client of a listener on `[::]` arrives as `::ffff:10.0.0.5`: name it as it is known.
        if address.hasPrefix("::ffff:"), address.contains(".") { return String(address.dropFirst(7)) }
        return address
    }

    // MARK: Errors

    /// The spec's code for a failure with no code of its own, by what was asked for.
    static func code(for kind: ContentKind?) -> RegistryError.Code {
        switch kind {
        case .manifest: .manifestUnknown
        case .blob: .blobUnknown
        case nil: .nameUnknown
        }
    }

    static func readOnly(_ method: HTTPRequest.Method) -> RegistryError {
        RegistryError(.unsupported, "this gateway is a read-only mirror: \(method.rawValue) is not supported")
    }

    /// The OCI error envelope as a response (no body for HEAD).
    public static func errorResponse(_ error: RegistryError, method: HTTPRequest.Method) -> Response {
        var headers: HTTPFields = [
            .contentType: "application/json; charset=utf-8",
            .dockerDistributionAPIVersion: "registry/2.0",
        ]
        for (name, value) in error.headers {
            if let field = HTTPField.Name(name) { headers[field] = value }
        }
        // A HEAD has no body: the message goes in the status line too (containerd shows only that).
        if error.code == .denied, let field = HTTPField.Name(ReasonPhraseHandler.header) {
            headers[field] = "Forbidden: " + ReasonPhraseHandler.phrase(error.message)
        }
        let body = ByteBuffer(string: error.envelope)
        headers[.contentLength] = String(body.readableBytes)
        return Response(
            status: HTTPResponse.Status(code: error.status),
            headers: headers,
            body: method == .head ? .init() : .init(byteBuffer: body))
    }
}

extension CharacterSet {
    static let urlQueryValueAllowed: CharacterSet = {
        var set = CharacterSet.urlQueryAllowed
        set.remove(charactersIn: "&=+?#")
        return set
    }()
}
