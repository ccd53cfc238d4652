import Foundation
import Hummingbird
import MirrorGateConfig
import MirrorGateCore
import MirrorGateStorage
import NIOCore
import RegistryModel

/// The status page `/_mirrorgate/`, `/_mirrorgate/status.json`, `/_mirrorgate/upstreams` and
/// `/_mirrorgate/report.json`.
///
/// They list every tenant's recent repositories, tags and digests (private ones included),
/// who pulled them and the upstream URLs, so with `auth` off and `admin_listen` set they are
/// served only on the admin listener; with `auth` on, the main listener serves them to
/// authenticated users too.
enum StatusEndpoints {
    static let paths: Set<String> = ["/_mirrorgate", "/_mirrorgate/", "/_mirrorgate/upstreams", "/_mirrorgate/status.json", "/_mirrorgate/report.json"]

    /// The answer for a status path, or nil when `request` is for something else.
    static func respond(_ request: Request, service: PullService, rules: AccessRules, ledger: PullLedger?, log: inout RequestLog) async throws -> Response? {
        let path = request.uri.path
        guard paths.contains(path) else { return nil }
        log.route = "status"
        guard request.method == .get || request.method == .head else { throw RegistryResponder<BasicRequestContext>.readOnly(request.method) }
        switch path {
        case "/_mirrorgate/upstreams":
            let body = try GatewayStatus.encoder.encode(await service.pool.statusReport())
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        case "/_mirrorgate/status.json":
            let body = try GatewayStatus.encoder.encode(await service.status())
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        case "/_mirrorgate/report.json":
            let (since, by) = try reportQuery(request)
            guard let ledger else { throw RegistryError(.unsupported, status: 404, "this gateway keeps no pull ledger") }
            let now = Date()
            let report = try await ledgerRead { try await ledger.report(since: now.addingTimeInterval(-since), by: by, now: now) }
            let body = try PullReport.encoder.encode(report)
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        default:
            let now = Date()
            var pulls: [PullReport]?
            if let ledger {
                pulls = try? await ledger.reports(since: now.addingTimeInterval(-86_400), by: [.repository, .client, .upstream], now: now)
            }
            let extras = StatusPage.Extras(
                pulls: pulls.map { .init(repositories: $0[0], clients: $0[1], upstreams: $0[2]) },
                policies: rules.policies, denialCounts: rules.denials.counts, recentDenials: rules.denials.recent)
            let page = StatusPage.render(await service.status(now: now), extras: extras)
            let headers: HTTPFields = [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store", .contentSecurityPolicy: ResponseHardening.statusPagePolicy,
            ]
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page)))
        }
    }

    /// `?since=24h&by=repository` (both optional): the window, in seconds, and the grouping.
    static func reportQuery(_ request: Request) throws(RegistryError) -> (since: TimeInterval, by: PullReport.Grouping) {
        var since: TimeInterval = 86_400
        if let text = request.uri.queryParameters["since"] {
            let duration: Duration
            do throws(ValueParseError) {
                duration = try ConfigValues.parseDuration(String(text))
            } catch {
                throw RegistryError(.unsupported, status: 400, "since: \(error.message)")
            }
            guard duration > .zero, duration <= .seconds(3650 * 86_400) else {
                throw RegistryError(.unsupported, status: 400, "since must be from 1s to 3650d")
            }
            since = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        }
        var by = PullReport.Grouping.repository
        if let text = request.uri.queryParameters["by"] {
            guard let grouping = PullReport.Grouping(rawValue: String(text)) else {
                throw RegistryError(.unsupported, status: 400, "by must be one of \(PullReport.Grouping.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            by = grouping
        }
        return (since, by)
    }

    /// A store failure as a 503 that names no path (storage errors describe the errno class).
    static func ledgerRead<T>(_ body: () async throws -> T) async throws(RegistryError) -> T {
        do {
            return try await body()
        } catch {
            throw RegistryError(.unsupported, status: 503, "the pull ledger cannot be read right now")
        }
    }
}
