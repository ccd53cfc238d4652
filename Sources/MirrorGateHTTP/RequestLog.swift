import Foundation
import Logging
import MirrorGateCore
import MirrorGateStorage
import Synchronization
import Hummingbird
import HTTPTypes
import NIOCore

/// One log line per request, written when the response body has been sent (or failed): the
/// request id, what was asked, whether the cache answered, which upstream served it, which
/// were skipped and why, bytes and duration. The same outcome feeds the metrics and the
/// status page's hit counts and failover list.
struct RequestLog: Sendable {
    var id: String
    var method: String
    var path: String
    /// Metric label: base, manifest, blob, tags, referrers, health, ready, metrics, status, other.
    var route = "other"
    var registry: String?
    var repository: String?
    var reference: String?
    var digest: String?
    var kind: ContentKind?
    var cache: CacheResult?
    var upstream: String?
    /// For a blob fetched while the client waits: the upstream the fetch used, known at the end.
    var upstreamAtEnd: (@Sendable () -> (upstream: String?, skipped: String?))?
    var skipped: String?
    var user: String?
    /// The rule that refused the request (403 `DENIED`).
    var denied: String?
    /// For the ledger (manifest requests only): the user or address, and the `User-Agent`.
    var client: String?
    var userAgent: String?
    /// The upstream GET this manifest request spent, if any.
    var spend: ManifestSpend?
    var status: Int = 0
    var error: String?
    var start: ContinuousClock.Instant = .now

    /// Emits the line, the metrics, the activity record and the ledger record. `bytes`: body
    /// bytes sent; `sentWith`: "sendfile" when the body went out as a file region.
    func finish(bytes: Int, sentWith: String? = nil, aborted: String?, logger: Logger, activity: GatewayActivity?, ledger: PullLedger? = nil) {
        let duration = ContinuousClock.now - start
        var metadata: Logger.Metadata = [
            "request_id": "\(id)",
            "method": "\(method)", "status": "\(status)",
            "bytes": "\(bytes)",
            "ms": "\(duration.milliseconds)",
        ]
        if let sentWith { metadata["sent_with"] = "\(sentWith)" }
        if let registry { metadata["registry"] = "\(registry)" }
        if let repository { metadata["name"] = "\(repository)" }
        if let reference { metadata["reference"] = "\(reference)" }
        if let digest { metadata["digest"] = "\(digest)" }
        if let cache { metadata["cache"] = "\(cache.rawValue)" }
        let atEnd = upstreamAtEnd?()
        let upstream = atEnd?.upstream ?? upstream
        let skipped = atEnd?.skipped ?? skipped
        if let upstream { metadata["served_by"] = "\(upstream)" }
        if let skipped { metadata["skipped"] = "\(skipped)" }
        if let user { metadata["user"] = "\(user)" }
        if let denied { metadata["denied"] = "\(denied)" }
        if let error { metadata["error"] = "\(error)" }
        if let aborted { metadata["aborted"] = "\(aborted)" }
        if registry == nil { metadata["path"] = "\(path.prefix(200))" }
        logger.info("request", metadata: metadata)

        GatewayMetrics.request(route: route, method: method, status: status, duration: duration)
        if let ledger { record(in: ledger, upstream: upstream) }
        guard (200..<400).contains(status), let kind else { return }
        if let cache {
            activity?.record(kind: kind, result: cache)
            GatewayMetrics.servedBytes(kind: kind, fromCache: cache != .miss && cache != .passThrough, bytes: bytes)
        }
        if let skipped, let activity {
            activity.recordFailover(GatewayActivity.Failover(
                at: Date(), registry: registry ?? "", repository: repository ?? "", reference: reference ?? "",
                servedBy: upstream ?? "none", skipped: skipped))
        }
    }
}

/// A body writer that counts what passes it, so that bytes sent past it (a file region written
/// straight to the connection) are counted too.
protocol ByteCountingWriter: ResponseBodyWriter {
    var counter: ByteCounter { get }
}

/// Counts body bytes on their way to the client.
struct CountingWriter: ByteCountingWriter {
    var base: any ResponseBodyWriter
    let counter: ByteCounter

    mutating func write(_ buffer: ByteBuffer) async throws {
        try await base.write(buffer)
        counter.add(buffer.readableBytes)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await base.finish(trailingHeaders)
    }
}

/// A byte count shared between a body writer and the code that logs after it.
final class ByteCounter: Sendable {
    private let value = Atomic<Int>(0)
    private let file = Atomic<Bool>(false)
    func add(_ n: Int) { value.add(n, ordering: .relaxed) }
    /// Bytes of a file region on the socket (sent with `sendfile`).
    func addSentFile(_ n: Int) {
        file.store(true, ordering: .relaxed)
        value.add(n, ordering: .relaxed)
    }
    var total: Int { value.load(ordering: .relaxed) }
    /// How the body went out, for the log line: nil for buffers.
    var sentWith: String? { file.load(ordering: .relaxed) ? "sendfile" : nil }
}

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int64 {
        let (s, atto) = components
        return s * 1000 + atto / 1_000_000_000_000_000
    }
}

extension RequestLog {
    /// A manifest answered (200, or 304 to a conditional GET) goes to the ledger: a GET with the
    /// manifest is a pull, anything else a check. Of the requests that shared one upstream GET,
    /// only the first to finish records its spend.
    func record(in ledger: PullLedger, upstream: String?) {
        guard kind == .manifest, status == 200 || status == 304, let registry, let repository, let reference, let digest else { return }
        let servedBy = upstream.map { $0.hasPrefix("cache") ? "cache" : $0 } ?? "cache"
        ledger.record(PullRecord(
            at: Date(), registry: registry, repository: repository, reference: reference, digest: digest,
            client: client ?? user ?? "unknown", clientKind: ClientKind(userAgent: userAgent),
            isPull: method == "GET" && status == 200, cache: cache?.rawValue ?? "hit", servedBy: servedBy,
            spentOn: spend.flatMap { $0.metered && $0.claim() ? $0.upstream : nil }))
    }
}
