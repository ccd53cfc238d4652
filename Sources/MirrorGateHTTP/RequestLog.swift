import Foundation
import Logging
import MirrorGateCore
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
    var status: Int = 0
    var error: String?
    var start: ContinuousClock.Instant = .now

    /// Emits the line, the metrics and the activity record. `bytes`: body bytes sent.
    func finish(bytes: Int, aborted: String?, logger: Logger, activity: GatewayActivity?) {
        let duration = ContinuousClock.now - start
        var metadata: Logger.Metadata = [
            "request_id": "\(id)",
            "method": "\(method)", "status": "\(status)",
            "bytes": "\(bytes)",
            "ms": "\(duration.milliseconds)",
        ]
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
        if let error { metadata["error"] = "\(error)" }
        if let aborted { metadata["aborted"] = "\(aborted)" }
        if registry == nil { metadata["path"] = "\(path.prefix(200))" }
        logger.info("request", metadata: metadata)

        GatewayMetrics.request(route: route, method: method, status: status, duration: duration)
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

/// Counts body bytes on their way to the client.
struct CountingWriter: ResponseBodyWriter {
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
    func add(_ n: Int) { value.add(n, ordering: .relaxed) }
    var total: Int { value.load(ordering: .relaxed) }
}

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int64 {
        let (s, atto) = components
        return s * 1000 + atto / 1_000_000_000_000_000
    }
}
