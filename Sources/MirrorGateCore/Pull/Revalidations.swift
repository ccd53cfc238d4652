import Foundation
import Synchronization

/// Background tag revalidations (stale-while-revalidate): which run now, when each tag was
/// last tried, and what they came to. A pure record; ``PullService`` does the I/O.
///
/// A tag is tried at most once per `every` seconds, whatever the outcome: an upstream that is
/// down is not asked again on every request for a popular tag, and a tag that keeps failing
/// is still served from the cache meanwhile.
final class Revalidations: Sendable {
    /// The most tags remembered; past it, those tried longest ago are forgotten first (a
    /// forgotten tag is merely eligible again).
    let capacity: Int

    private struct State {
        var lastTried: [FlightKey: Date] = [:]
        var running: Set<FlightKey> = []
        var succeeded = 0
        var moved = 0
        var failed = 0
        var lastFailure: GatewayStatus.Revalidations.Failure?
    }

    private let state = Mutex(State())

    init(capacity: Int = 50_000) {
        self.capacity = capacity
    }

    /// Claims a revalidation of `key`: true unless one runs already or one started less than
    /// `every` seconds ago.
    func begin(_ key: FlightKey, every: Double, now: Date = Date()) -> Bool {
        state.withLock { s in
            if s.running.contains(key) { return false }
            if let last = s.lastTried[key], now.timeIntervalSince(last) < every { return false }
            if s.lastTried[key] == nil, s.lastTried.count >= capacity {
                let cutoff = now.addingTimeInterval(-every)
                s.lastTried = s.lastTried.filter { $0.value > cutoff }
                if s.lastTried.count >= capacity { s.lastTried.removeAll(keepingCapacity: true) }
            }
            s.lastTried[key] = now
            s.running.insert(key)
            return true
        }
    }

    /// The revalidation of `key` ended: `moved` when the tag now names another digest,
    /// `failure` (a message) when no upstream could confirm it.
    func end(_ key: FlightKey, moved: Bool = false, failure: String?, now: Date = Date()) {
        state.withLock { s in
            s.running.remove(key)
            if let failure {
                s.failed += 1
                s.lastFailure = .init(tag: key.description, error: failure, at: now)
            } else {
                s.succeeded += 1
                if moved { s.moved += 1 }
            }
        }
    }

    /// Whether a revalidation of `key` runs now.
    func isRunning(_ key: FlightKey) -> Bool {
        state.withLock { $0.running.contains(key) }
    }

    /// What the status page shows.
    var report: GatewayStatus.Revalidations {
        state.withLock { s in
            .init(inFlight: s.running.count, succeeded: s.succeeded, moved: s.moved, failed: s.failed, lastFailure: s.lastFailure)
        }
    }
}
