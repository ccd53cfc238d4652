import Foundation
import Logging
import MirrorGateStorage
import ServiceLifecycle
import Synchronization

/// The pull ledger's writer and reader: every client manifest request, kept in the metadata
/// store (``PullLedgerStore``) for `ledger.retention`.
///
/// The request path only appends to memory (one lock, no I/O, no waiting); ``run()`` writes
/// what gathered once a second in one transaction, folds requests older than 25 hours into
/// hourly roll-ups and drops what is older than the retention. A graceful stop writes the rest;
/// `kill -9` loses at most the last second. Reports write what is pending first, so they
/// include every request answered before them.
public final class PullLedger: Service, Sendable {
    struct Pending {
        var records: [PullRecord] = []
        var dropped = 0
    }

    public let store: any PullLedgerStore
    let logger: Logger
    let flushInterval: Duration
    private let pending = Mutex(Pending())
    private let retentionSetting: Mutex<Duration>

    /// Requests older than this are folded into hourly roll-ups: a day and an hour, so that
    /// reports of the last day (the status page's, `--since 24h`) count requests as they came.
    public static let rollUpAge: TimeInterval = 25 * 3600
    /// The most requests held in memory; beyond it (the store failing for a long time) the
    /// oldest are dropped, and the next successful write logs how many.
    public static let maxPending = 100_000

    public init(store: any PullLedgerStore, retention: Duration, flushInterval: Duration = .seconds(1), logger: Logger) {
        self.store = store
        self.retentionSetting = Mutex(retention)
        self.flushInterval = flushInterval
        self.logger = logger
    }

    /// How long requests are kept (`ledger.retention`, re-read on SIGHUP).
    public var retention: Duration {
        get { retentionSetting.withLock { $0 } }
    }

    public func setRetention(_ retention: Duration) {
        retentionSetting.withLock { $0 = retention }
    }

    /// Queues one request for the next write. Cheap enough for the warm path.
    public func record(_ record: PullRecord) {
        pending.withLock { p in
            p.records.append(record)
            if p.records.count > Self.maxPending {
                p.records.removeFirst(p.records.count - Self.maxPending)
                p.dropped += 1
            }
        }
    }

    /// Requests waiting to be written.
    public var pendingCount: Int { pending.withLock { $0.records.count } }

    /// Writes what is pending; on failure it stays queued for the next write.
    public func flush() async {
        let (batch, dropped) = pending.withLock { p -> ([PullRecord], Int) in
            defer {
                p.records = []
                p.dropped = 0
            }
            return (p.records, p.dropped)
        }
        guard !batch.isEmpty else { return }
        do {
            try await store.recordPulls(batch)
            if dropped > 0 {
                logger.warning("pull ledger: requests were dropped while the metadata store could not be written", metadata: ["dropped": "\(dropped)"])
            }
        } catch {
            logger.error("pull ledger: cannot write requests; kept in memory for the next try", metadata: [
                "requests": "\(batch.count)", "error": "\(error)",
            ])
            pending.withLock { p in
                p.records.insert(contentsOf: batch, at: 0)
                p.dropped += dropped
                if p.records.count > Self.maxPending {
                    p.dropped += p.records.count - Self.maxPending
                    p.records.removeFirst(p.records.count - Self.maxPending)
                }
            }
        }
    }

    /// Rolls up requests older than ``rollUpAge`` and drops what is older than the retention.
    public func maintain(now: Date = Date()) async {
        let keep = retention.seconds
        do {
            try await store.prunePulls(before: now.addingTimeInterval(-keep))
            if keep > Self.rollUpAge { try await store.rollUpPulls(before: now.addingTimeInterval(-Self.rollUpAge)) }
        } catch {
            logger.error("pull ledger: roll-up or retention failed; retried at the next pass", metadata: ["error": "\(error)"])
        }
    }

    /// How often ``maintain(now:)`` runs: a tenth of the retention, from 1 s to 10 min.
    var maintenanceInterval: Duration {
        min(.seconds(600), max(.seconds(1), retention / 10))
    }

    /// The report since `since`, grouped `by`.
    public func report(since: Date, by: PullReport.Grouping, now: Date = Date()) async throws -> PullReport {
        try await reports(since: since, by: [by], now: now)[0]
    }

    /// One report per grouping, from one read of the store.
    public func reports(since: Date, by groupings: [PullReport.Grouping], now: Date = Date()) async throws -> [PullReport] {
        await flush()
        let tallies = try await store.pullTallies(since: since)
        return groupings.map { PullReport(tallies: tallies, by: $0, since: since, generatedAt: now) }
    }

    public func run() async throws {
        await maintain()
        var nextMaintenance = ContinuousClock.now + maintenanceInterval
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.flushInterval) }
            } catch {
                break
            }
            await flush()
            if ContinuousClock.now >= nextMaintenance {
                await maintain()
                nextMaintenance = ContinuousClock.now + maintenanceInterval
            }
        }
        // Stopped after the listeners (it comes first in the service list): what the last
        // responses recorded is written here.
        await flush()
    }
}

extension Duration {
    /// Seconds as a floating-point number.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
