import Foundation
import Synchronization

/// What happened recently, for the status page: cache hits and misses by kind, and the last
/// requests that failed over (an upstream was skipped or failed before one answered).
/// Every recorded outcome also goes to ``GatewayMetrics``.
public final class GatewayActivity: Sendable {
    /// One request that did not go to the first upstream.
    public struct Failover: Sendable, Codable, Equatable {
        public var at: Date
        public var registry: String
        public var repository: String
        public var reference: String
        /// The upstream that answered, or `cache` / `none`.
        public var servedBy: String
        /// Each upstream passed over, with its reason.
        public var skipped: String

        public init(at: Date, registry: String, repository: String, reference: String, servedBy: String, skipped: String) {
            self.at = at
            self.registry = registry
            self.repository = repository
            self.reference = reference
            self.servedBy = servedBy
            self.skipped = skipped
        }
    }

    struct State {
        var counts: [ContentKind: [CacheResult: Int]] = [:]
        var failovers: [Failover] = []
    }

    /// How many failovers are kept.
    public let keep: Int
    public let startedAt: Date
    private let state = Mutex(State())

    public init(keep: Int = 20, startedAt: Date = Date()) {
        self.keep = keep
        self.startedAt = startedAt
    }

    /// Records how a manifest or blob request was answered.
    public func record(kind: ContentKind, result: CacheResult) {
        state.withLock { $0.counts[kind, default: [:]][result, default: 0] += 1 }
        GatewayMetrics.cache(kind: kind, result: result)
    }

    /// Records a request that skipped or failed over upstreams.
    public func recordFailover(_ failover: Failover) {
        state.withLock { s in
            s.failovers.append(failover)
            if s.failovers.count > keep { s.failovers.removeFirst(s.failovers.count - keep) }
        }
    }

    /// Counts by kind and result.
    public func count(_ kind: ContentKind, _ result: CacheResult) -> Int {
        state.withLock { $0.counts[kind]?[result] ?? 0 }
    }

    /// The last failovers, newest first.
    public var recentFailovers: [Failover] {
        state.withLock { Array($0.failovers.reversed()) }
    }
}
