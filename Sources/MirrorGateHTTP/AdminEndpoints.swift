import Hummingbird
import Logging
import MirrorGateCore
import NIOCore
import RegistryModel

/// `/healthz` (the process answers), `/readyz` (configuration loaded, cache storage state) and
/// `/metrics` (Prometheus). On the main listener unless `admin_listen` moves them to their own.
enum AdminEndpoints {
    /// The answer for an admin path, or nil when `request` is for something else.
    static func respond(_ request: Request, service: PullService, metrics: MetricsExporter?, readiness: Readiness, log: inout RequestLog) async throws(RegistryError) -> Response? {
        let path = request.uri.path
        guard path == "/healthz" || path == "/readyz" || (path == "/metrics" && metrics != nil) else { return nil }
        guard request.method == .get || request.method == .head else {
            throw RegistryError(.unsupported, "\(path) answers GET and HEAD only")
        }
        let body: ByteBuffer
        var status = HTTPResponse.Status.ok
        var headers: HTTPFields = [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"]
        switch path {
        case "/healthz":
            log.route = "health"
            body = ByteBuffer(string: "ok\n")
        case "/readyz":
            log.route = "ready"
            if let reason = readiness.notReadyReason {
                // Stopping: no new clients, please (in-flight responses still finish).
                status = .serviceUnavailable
                body = ByteBuffer(string: "not ready: \(reason)\n")
            } else {
                // Still ready when the cache cannot be written: blobs pass through, verified.
                // The reason is the errno class (StorageError's description), never a path.
                var lines = service.janitor?.unwritableReason.map { ["ok: cache storage not writable (\($0)); serving as a verified pass-through"] } ?? []
                lines += readiness.degraded.map { "ok: \($0)" }
                body = ByteBuffer(string: lines.isEmpty ? "ok\n" : lines.joined(separator: "\n") + "\n")
            }
        default:
            log.route = "metrics"
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            body = await metrics!.render(service)
        }
        headers[.contentLength] = String(body.readableBytes)
        return Response(status: status, headers: headers, body: request.method == .head ? .init() : .init(byteBuffer: body))
    }
}

/// The responder of `admin_listen`: health, readiness, metrics and the status page with its
/// JSON, no authentication (bind it to an address only the cluster or monitoring can reach).
public struct AdminResponder<Context: RequestContext>: HTTPResponder {
    let service: PullService
    let metrics: MetricsExporter?
    let readiness: Readiness
    let logger: Logger
    let rules: AccessRules
    let ledger: PullLedger?

    public init(service: PullService, metrics: MetricsExporter?, readiness: Readiness, rules: AccessRules, ledger: PullLedger?, logger: Logger) {
        self.rules = rules
        self.ledger = ledger
        self.service = service
        self.metrics = metrics
        self.readiness = readiness
        self.logger = logger
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        var log = RequestLog(id: RegistryResponder<Context>.requestID(request.headers[.xRequestID]), method: request.method.rawValue, path: request.uri.path)
        var response: Response
        do {
            if let admin = try await AdminEndpoints.respond(request, service: service, metrics: metrics, readiness: readiness, log: &log) {
                response = admin
            } else if let status = try await StatusEndpoints.respond(request, service: service, rules: rules, ledger: ledger, log: &log) {
                response = status
            } else {
                response = RegistryResponder<Context>.errorResponse(
                    RegistryError(.unsupported, status: 404, "the admin listener serves /healthz, /readyz, /metrics and /_mirrorgate/ only"),
                    method: request.method)
            }
        } catch let error as RegistryError {
            response = RegistryResponder<Context>.errorResponse(error, method: request.method)
        } catch {
            // Encoding the status failed: nothing a client can act on.
            response = RegistryResponder<Context>.errorResponse(RegistryError(.nameUnknown, status: 500, "internal error"), method: request.method)
        }
        log.status = response.status.code
        response.headers[.xRequestID] = log.id
        ResponseHardening.apply(to: &response.headers)
        // Probes every few seconds would drown the request log: metrics only, no line.
        GatewayMetrics.request(route: log.route, method: log.method, status: log.status, duration: ContinuousClock.now - log.start)
        return response
    }
}
