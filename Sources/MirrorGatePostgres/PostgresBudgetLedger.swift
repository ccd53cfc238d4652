import Foundation
import Logging
import MirrorGateStorage
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The ``BudgetLedger`` all replicas share: every decision is made in PostgreSQL, with
/// ``BudgetPolicy`` doing the arithmetic, so replicas decide exactly as ``LocalBudgetLedger``
/// does and racing replicas never overspend together.
///
/// - **Reserve** is one transaction: `SELECT … FROM budgets WHERE key = $1 FOR UPDATE`
///   serializes the spenders of a budget across replicas, and the spends are counted in a
///   *later* statement (under READ COMMITTED each statement sees the rows committed before it
///   began, so the count sees every earlier reservation; counting inside the locking statement
///   does not, and overspends). Then a `reserved` row is inserted.
/// - A `reserved` row counts as spent until it is settled (`spent`, at the answer's time) or
///   deleted (nothing was spent). One a crashed replica never settles counts for the whole
///   window, so a crash can only under-spend.
/// - What upstreams announce is merged under the same row lock: the newest announcement wins,
///   blocks only extend, and an announcement of budget lifts only a GET block set before it.
/// - Free requests read `all_blocked_until` from a copy in this process, refreshed by
///   ``run()`` every poll interval and at once when another replica notifies a change.
///
/// Times are the callers' (`now:`, as the protocol has it), not the database's: the windows are
/// hours long, and replicas' clocks agree to far better than that (see
/// ``PostgresConnectionCheck/clockOffset``).
///
/// When the database cannot be reached the protocol methods fail closed: ``reserve(_:now:)``
/// refuses (no manifest GET is spent without the shared ledger), free requests go on with the
/// last blocks known. The `…Shared` methods throw ``StorageError`` instead.
public final class PostgresBudgetLedger: BudgetLedger, Service {
    let database: PostgresDatabase
    let limits: [BudgetKey: BudgetLimit?]
    /// Written into each reservation, for the operator (which replica spent what).
    let replica: String
    let logger: Logger
    private let blocks = Mutex<[BudgetKey: Date]>([:])
    private let lastStatus = Mutex<[BudgetKey: BudgetStatus]>([:])

    static let notification = "budget"

    /// - Parameters:
    ///   - limits: every budget the gateway knows, with its configured limit (nil: only what
    ///     the upstream announces applies), as for ``LocalBudgetLedger``.
    ///   - replica: this process's identity (``LeaseOwner/id``).
    public init(limits: [BudgetKey: BudgetLimit?], database: PostgresDatabase, replica: String, logger: Logger) {
        self.limits = limits
        self.database = database
        self.replica = replica
        self.logger = logger
    }

    // MARK: Service

    /// Keeps the copy of the free-request blocks fresh until cancelled or shut down.
    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let ticket = database.hub.register(Self.notification)
            try? await refreshBlocks()
            await cancelWhenGracefulShutdown { await self.database.hub.wait(ticket, timeout: self.database.configuration.pollInterval) }
        }
    }

    /// Reads every known budget's `all_blocked_until` into the local copy.
    public func refreshBlocks(now: Date = Date()) async throws {
        let keys = limits.keys.map(\.value)
        guard !keys.isEmpty else { return }
        let rows = try await database.withConnection("budget blocks") { c in
            try await c.rows("SELECT key, all_blocked_until FROM budgets WHERE key = ANY(\(keys))", logger: self.logger).map {
                try $0.decode((String, Date?).self)
            }
        }
        // Clamped as every record read is: a row an older version wrote may block for years.
        let horizon = now.addingTimeInterval(BudgetRecord.maxHorizon)
        blocks.withLock { b in
            for (key, until) in rows { b[BudgetKey(key)] = until.map { min($0, horizon) } }
        }
    }

    // MARK: BudgetLedger

    public func reserve(_ key: BudgetKey, now: Date) async -> BudgetDecision {
        do {
            return try await reserveShared(key, now: now)
        } catch {
            logger.debug("no spend without the shared ledger", metadata: ["budget": "\(key)", "error": "\(error)"])
            return .refused(until: nil)
        }
    }

    public func admitFree(_ key: BudgetKey, now: Date) async -> BudgetDecision {
        let until = blocks.withLock { $0[key] }
        if let until, until > now { return .refused(until: until) }
        return .granted(nil)
    }

    public func release(_ hold: BudgetHold) async {
        do {
            try await releaseShared(hold)
        } catch {
            logger.warning("could not give a pull back to the shared ledger; it stays counted", metadata: ["budget": "\(hold.key)", "error": "\(error)"])
        }
    }

    public func settle(_ hold: BudgetHold, answer: BudgetAnswer?, now: Date) async {
        do {
            try await settleShared(hold, answer: answer, now: now)
        } catch {
            logger.warning("could not settle a pull in the shared ledger; it stays counted", metadata: ["budget": "\(hold.key)", "error": "\(error)"])
        }
    }

    public func observe(_ key: BudgetKey, answer: BudgetAnswer, manifestGET: Bool, now: Date) async {
        do {
            try await observeShared(key, answer: answer, manifestGET: manifestGET, now: now)
        } catch {
            // Keep at least this process from hammering an upstream that said 429.
            if answer.status == 429, !manifestGET, let limit = limits[key] {
                let record = BudgetPolicy.learn(answer, into: BudgetRecord(key: key.value), limit: limit, spends: [], manifestGET: false, now: now)
                if let until = record.allBlockedUntil { blocks.withLock { $0[key] = max($0[key] ?? until, until) } }
            }
            logger.warning("could not share what an upstream said about its budget", metadata: ["budget": "\(key)", "error": "\(error)"])
        }
    }

    public func status(_ key: BudgetKey, now: Date) async -> BudgetStatus? {
        guard limits[key] != nil else { return nil }
        do {
            return try await statusShared(key, now: now)
        } catch {
            var status = lastStatus.withLock { $0[key] }
                ?? BudgetStatus(limit: limits[key]??.pulls, remaining: nil, resetAt: nil, spentInWindow: 0, windowSeconds: limits[key]??.window, blockedUntil: nil, lastError: nil)
            status.lastError = "shared budget ledger unavailable: \(error)"
            return status
        }
    }

    // MARK: The shared ledger, throwing

    /// ``reserve(_:now:)``, throwing ``StorageError`` when the database cannot decide.
    public func reserveShared(_ key: BudgetKey, now: Date) async throws -> BudgetDecision {
        guard let limit = limits[key] else { return .granted(nil) }
        let replica = self.replica
        return try await database.transaction("budget reservation") { c in
            let row = try await self.lockedRow(key, on: c)
            let record = row.record.clamped(now: now)
            if let until = record.allBlockedUntil, until > now { return .refused(until: until) }
            // A later statement than the lock: it sees every reservation committed before.
            let inputs = try await self.inputs(key, limit: limit, record: record, now: now, on: c)
            let (remaining, reset) = BudgetPolicy.evaluate(inputs, now: now)
            if let remaining, remaining <= 0 { return .refused(until: reset) }
            let rows = try await c.rows(
                "INSERT INTO spends (budget, at, state, replica) VALUES (\(key.value), \(now), 'reserved', \(replica)) RETURNING id",
                logger: self.logger)
            guard let id = try rows.first?.decode(Int64.self) else {
                throw StorageError(.io, operation: "budget reservation", cause: "no id returned")
            }
            return .granted(BudgetHold(key: key, id: id, at: now))
        }
    }

    /// ``release(_:)``, throwing.
    public func releaseShared(_ hold: BudgetHold) async throws {
        try await database.withConnection("budget release") { c in
            try await c.run("DELETE FROM spends WHERE id = \(hold.id) AND state = 'reserved'", logger: self.logger)
        }
    }

    /// ``settle(_:answer:now:)``, throwing.
    public func settleShared(_ hold: BudgetHold, answer: BudgetAnswer?, now: Date) async throws {
        let spent = answer.map { (200..<300).contains($0.status) } ?? false
        try await database.withConnection("budget settlement") { c in
            if spent {
                try await c.run("UPDATE spends SET state = 'spent', at = \(now) WHERE id = \(hold.id)", logger: self.logger)
            } else {
                try await c.run("DELETE FROM spends WHERE id = \(hold.id) AND state = 'reserved'", logger: self.logger)
            }
        }
        // What the answer announces already counts this spend: learn it just after it.
        if let answer { try await observeShared(hold.key, answer: answer, manifestGET: true, now: now.addingTimeInterval(0.001)) }
    }

    /// ``observe(_:answer:manifestGET:now:)``, throwing.
    public func observeShared(_ key: BudgetKey, answer: BudgetAnswer, manifestGET: Bool, now: Date) async throws {
        guard answer.isInformative, let limit = limits[key] else { return }
        let learned = try await database.transaction("budget announcement") { c -> BudgetRecord in
            let row = try await self.lockedRow(key, on: c)
            let current = row.record.clamped(now: now)
            var spends: [Date] = []
            if answer.status == 429 {
                let window = current.learnedWindow ?? limit?.window ?? 3600
                spends = try await c.rows(
                    "SELECT at FROM spends WHERE budget = \(key.value) AND state = 'spent' AND at > \(now.addingTimeInterval(-window)) ORDER BY at",
                    logger: self.logger
                ).map { try $0.decode(Date.self) }
            }
            var record = BudgetPolicy.learn(answer, into: current, limit: limit, spends: spends, manifestGET: manifestGET, now: now)
            var blockedAt = row.getBlockedAt
            // The newest announcement wins: one older than the stored one changes nothing of it.
            // (Asked of the stored row: clamping moved its future dates to `now`.)
            let stored = row.record
            let older = stored.learnedAt.map { $0 > now } ?? false
            if older {
                record.learnedLimit = stored.learnedLimit
                record.learnedRemaining = stored.learnedRemaining
                record.learnedWindow = stored.learnedWindow
                record.learnedAt = stored.learnedAt
            }
            // An announcement of budget lifts only a GET block set before it.
            if record.getBlockedUntil == nil, current.getBlockedUntil != nil, older || (row.getBlockedAt.map { $0 > now } ?? false) {
                record.getBlockedUntil = current.getBlockedUntil
            }
            if record.getBlockedUntil != current.getBlockedUntil, record.getBlockedUntil != nil {
                blockedAt = max(blockedAt ?? now, now)
            }
            try await c.run(BudgetRow.upsert(record, blockedAt: record.getBlockedUntil == nil ? nil : blockedAt), logger: self.logger)
            if record.allBlockedUntil != current.allBlockedUntil || record.getBlockedUntil != current.getBlockedUntil {
                try await PostgresDatabase.notify(Self.notification, on: c, logger: self.logger)
            }
            return record
        }
        blocks.withLock { $0[key] = learned.allBlockedUntil }
        if answer.status == 429 {
            logger.warning("upstream rate limit reached", metadata: [
                "budget": "\(key)", "get_blocked_until": "\(learned.getBlockedUntil.map { "\($0)" } ?? "-")",
                "all_blocked_until": "\(learned.allBlockedUntil.map { "\($0)" } ?? "-")",
            ])
        }
    }

    /// ``status(_:now:)``, throwing.
    public func statusShared(_ key: BudgetKey, now: Date) async throws -> BudgetStatus? {
        guard let limit = limits[key] else { return nil }
        let status = try await database.withConnection("budget status") { c in
            let rows = try await c.rows("SELECT \(unescaped: BudgetRow.columns) FROM budgets WHERE key = \(key.value)", logger: self.logger)
            let record = try rows.first.map { try BudgetRow(decoding: $0).record.clamped(now: now) } ?? BudgetRecord(key: key.value)
            return BudgetPolicy.status(try await self.inputs(key, limit: limit, record: record, now: now, on: c), now: now)
        }
        lastStatus.withLock { $0[key] = status }
        return status
    }

    // MARK: Rows

    /// The budget's row, locked for the rest of the transaction (created on first use).
    private func lockedRow(_ key: BudgetKey, on c: PostgresConnection) async throws -> BudgetRow {
        let select: PostgresQuery = "SELECT \(unescaped: BudgetRow.columns) FROM budgets WHERE key = \(key.value) FOR UPDATE"
        if let row = try await c.rows(select, logger: logger).first { return try BudgetRow(decoding: row) }
        try await c.run("INSERT INTO budgets (key) VALUES (\(key.value)) ON CONFLICT DO NOTHING", logger: logger)
        guard let row = try await c.rows(select, logger: logger).first else {
            throw StorageError(.io, operation: "budget reservation", cause: "budget row missing after insert")
        }
        return try BudgetRow(decoding: row)
    }

    /// What ``BudgetPolicy`` needs: settled spends in the longest window that applies, and
    /// reservations in it as pending (counted against the configured limit and the announced
    /// remaining alike, as holds in flight are).
    private func inputs(_ key: BudgetKey, limit: BudgetLimit?, record: BudgetRecord, now: Date, on c: PostgresConnection) async throws -> BudgetPolicy.Inputs {
        let longest = max(limit?.window ?? 0, record.learnedWindow ?? limit?.window ?? BudgetPolicy.defaultWindow)
        let rows = try await c.rows(
            "SELECT at, state FROM spends WHERE budget = \(key.value) AND at > \(now.addingTimeInterval(-longest)) ORDER BY at, id",
            logger: logger)
        var spends: [Date] = []
        var pending = 0
        for row in rows {
            let (at, state) = try row.decode((Date, String).self)
            if state == "spent" { spends.append(at) } else { pending += 1 }
        }
        return BudgetPolicy.Inputs(limit: limit, spends: spends, pending: pending, record: record)
    }
}
