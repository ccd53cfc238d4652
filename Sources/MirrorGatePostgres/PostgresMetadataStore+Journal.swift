import Foundation
import MirrorGateStorage
import PostgresNIO

/// ``BudgetJournal`` on the shared tables, so the store is a whole ``MetadataStore``. With
/// several replicas the gateway uses ``PostgresBudgetLedger`` instead of a local ledger over
/// this journal; the two read and write the same rows.
extension PostgresMetadataStore {
    public func recordSpend(budget: String, at: Date) async throws {
        try await database.withConnection("spend record") { c in
            try await c.run("INSERT INTO spends (budget, at, state) VALUES (\(budget), \(at), 'spent')", logger: self.database.logger)
        }
    }

    /// Every spend, settled or only reserved (a reservation counts as spent).
    public func spends(since: Date) async throws -> [(budget: String, at: Date)] {
        try await database.withConnection("spend lookup") { c in
            try await c.rows("SELECT budget, at FROM spends WHERE at >= \(since) ORDER BY at, id", logger: self.database.logger).map { row in
                let (budget, at) = try row.decode((String, Date).self)
                return (budget: budget, at: at)
            }
        }
    }

    public func pruneSpends(before: Date) async throws {
        try await database.withConnection("spend pruning") { c in
            try await c.run("DELETE FROM spends WHERE at < \(before)", logger: self.database.logger)
        }
    }

    public func saveBudget(_ r: BudgetRecord) async throws {
        try await database.withConnection("budget save") { c in
            try await c.run(BudgetRow.upsert(r, blockedAt: nil), logger: self.database.logger)
        }
    }

    public func budgets() async throws -> [BudgetRecord] {
        let now = Date()
        return try await database.withConnection("budget lookup") { c in
            try await c.rows("SELECT \(unescaped: BudgetRow.columns) FROM budgets", logger: self.database.logger).map {
                try BudgetRow(decoding: $0).record.clamped(now: now)
            }
        }
    }
}

/// A `budgets` row: the ``BudgetRecord`` plus when the GET block was set (so a later
/// announcement of budget lifts only an earlier block).
struct BudgetRow: Sendable {
    var record: BudgetRecord
    var getBlockedAt: Date?

    static let columns =
        "key, learned_limit, learned_remaining, learned_window, learned_at, get_blocked_until, get_blocked_at, all_blocked_until, last_error"

    init(record: BudgetRecord, getBlockedAt: Date?) {
        self.record = record
        self.getBlockedAt = getBlockedAt
    }

    init(decoding row: PostgresRow) throws {
        let (key, limit, remaining, window, learnedAt, getBlocked, getBlockedAt, allBlocked, lastError) =
            try row.decode((String, Int64?, Int64?, Double?, Date?, Date?, Date?, Date?, String?).self)
        func count(_ n: Int64?) -> Int? { n.map { Int(clamping: $0) } }
        record = BudgetRecord(
            key: key, learnedLimit: count(limit), learnedRemaining: count(remaining), learnedWindow: window, learnedAt: learnedAt,
            getBlockedUntil: getBlocked, allBlockedUntil: allBlocked, lastError: lastError)
        self.getBlockedAt = getBlockedAt
    }

    /// Writes the whole record (the journal's "replace"). Dates go in clamped to what a
    /// `timestamptz` holds: the record may carry whatever an older version stored.
    static func upsert(_ r: BudgetRecord, blockedAt: Date?) -> PostgresQuery {
        let limit = r.learnedLimit.map(Int64.init)
        let remaining = r.learnedRemaining.map(Int64.init)
        let window = r.learnedWindow.flatMap { $0.isFinite ? $0 : nil }
        return """
            INSERT INTO budgets (\(unescaped: columns))
            VALUES (\(r.key), \(limit), \(remaining), \(window), \(r.learnedAt?.storable), \(r.getBlockedUntil?.storable), \(blockedAt?.storable), \(r.allBlockedUntil?.storable), \(r.lastError))
            ON CONFLICT (key) DO UPDATE SET
                learned_limit = EXCLUDED.learned_limit, learned_remaining = EXCLUDED.learned_remaining,
                learned_window = EXCLUDED.learned_window, learned_at = EXCLUDED.learned_at,
                get_blocked_until = EXCLUDED.get_blocked_until, get_blocked_at = EXCLUDED.get_blocked_at,
                all_blocked_until = EXCLUDED.all_blocked_until, last_error = EXCLUDED.last_error
            """
    }
}

extension Date {
    /// This date within years 1 to 9999: PostgreSQL's `timestamptz` ends in 294276, and the
    /// driver's microsecond count traps on a date past Int64's range.
    var storable: Date {
        let t = timeIntervalSince1970
        guard t.isFinite else { return t < 0 ? Date(timeIntervalSince1970: -62_135_596_800) : Date(timeIntervalSince1970: 253_402_300_799) }
        return Date(timeIntervalSince1970: min(max(t, -62_135_596_800), 253_402_300_799))
    }
}
