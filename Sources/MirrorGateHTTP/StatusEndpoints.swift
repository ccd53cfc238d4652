import Hummingbird
import MirrorGateCore
import NIOCore
import RegistryModel

/// The status page `/_mirrorgate/`, `/_mirrorgate/status.json` and `/_mirrorgate/upstreams`.
///
/// They list every tenant's recent repositories, tags and digests (private ones included) and
/// the upstream URLs, so with `auth` off and `admin_listen` set they are served only on the
/// admin listener; with `auth` on, the main listener serves them to authenticated users too.
enum StatusEndpoints {
    /// The answer for a status path, or nil when `request` is for something else.
    static func respond(_ request: Request, service: PullService, log: inout RequestLog) async throws -> Response? {
        let path = request.uri.path
        guard path == "/_mirrorgate" || path == "/_mirrorgate/" || path == "/_mirrorgate/upstreams" || path == "/_mirrorgate/status.json" else {
            return nil
        }
        log.route = "status"
        guard request.method == .get || request.method == .head else { throw RegistryResponder<BasicRequestContext>.readOnly(request.method) }
        switch path {
        case "/_mirrorgate/upstreams":
            let body = try GatewayStatus.encoder.encode(await service.pool.statusReport())
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        case "/_mirrorgate/status.json":
            let body = try GatewayStatus.encoder.encode(await service.status())
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        default:
            let page = StatusPage.render(await service.status())
            let headers: HTTPFields = [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store", .contentSecurityPolicy: ResponseHardening.statusPagePolicy,
            ]
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page)))
        }
    }
}
