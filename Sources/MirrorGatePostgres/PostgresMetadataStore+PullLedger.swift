import Foundation
import MirrorGateStorage
import PostgresNIO

/// The pull ledger in the shared database, as ``SQLiteMetadataStore`` keeps it on one replica:
/// `ledger_requests` (one row per client manifest request, for a day) and `ledger_hours`
/// (hourly roll-ups). Every replica appends its own requests; reports read all of them.
///
/// Replicas roll up at the same time, so a roll-up moves rows with one statement
/// (`DELETE … RETURNING` feeding the upsert): a request is deleted by exactly one of the racing
/// statements (the others wait on its row lock and then find it gone), so it is counted once.
extension PostgresMetadataStore: PullLedgerStore {
    public func recordPulls(_ records: [PullRecord]) async throws {
        guard !records.isEmpty else { return }
        // One statement for the batch: arrays unnested server-side.
        let at = records.map(\.at)
        let registry = records.map(\.registry)
        let repository = records.map(\.repository)
        let reference = records.map(\.reference)
        let digest = records.map(\.digest)
        let client = records.map(\.client)
        let kind = records.map(\.clientKind.rawValue)
        let pull = records.map(\.isPull)
        let cache = records.map(\.cache)
        let servedBy = records.map(\.servedBy)
        let spentOn = records.map { $0.spentOn ?? "" }
        try await database.withConnection("pull ledger record") { c in
            try await c.run(
                """
                INSERT INTO ledger_requests (at, registry, repository, reference, digest, client, client_kind, pull, cache, served_by, spent_on)
                SELECT * FROM unnest(\(at)::timestamptz[], \(registry)::text[], \(repository)::text[], \(reference)::text[], \(digest)::text[],
                    \(client)::text[], \(kind)::text[], \(pull)::boolean[], \(cache)::text[], \(servedBy)::text[], \(spentOn)::text[])
                """, logger: self.database.logger)
        }
    }

    public func pullTallies(since: Date) async throws -> [PullTally] {
        try await database.withConnection("pull ledger report", timeout: database.configuration.migrationTimeout) { c in
            let rows = try await c.rows(
                """
                SELECT registry, repository, digest, client, client_kind, served_by, spent_on,
                       SUM(pulls)::bigint, SUM(checks)::bigint, SUM(spends)::bigint, MAX(last_pull)
                FROM (
                    SELECT registry, repository, digest, client, client_kind, served_by, spent_on,
                           CASE WHEN pull THEN 1 ELSE 0 END AS pulls, CASE WHEN pull THEN 0 ELSE 1 END AS checks,
                           CASE WHEN spent_on <> '' THEN 1 ELSE 0 END AS spends, CASE WHEN pull THEN at END AS last_pull
                    FROM ledger_requests WHERE at >= \(since)
                    UNION ALL
                    SELECT registry, repository, digest, client, client_kind, served_by, spent_on, pulls, checks, spends, last_pull
                    FROM ledger_hours WHERE hour >= \(since)
                ) AS t
                GROUP BY registry, repository, digest, client, client_kind, served_by, spent_on
                """, logger: self.database.logger)
            return try rows.map { row in
                let (registry, repository, digest, client, kind, servedBy, spentOn, pulls, checks, spends, lastPull) =
                    try row.decode((String, String, String, String, String, String, String, Int64, Int64, Int64, Date?).self)
                return PullTally(
                    registry: registry, repository: repository, digest: digest, client: client,
                    clientKind: ClientKind(rawValue: kind) ?? .other, servedBy: servedBy, spentOn: spentOn.isEmpty ? nil : spentOn,
                    pulls: Int(pulls), checks: Int(checks), spends: Int(spends), lastPull: lastPull)
            }
        }
    }

    @discardableResult
    public func rollUpPulls(before: Date) async throws -> Int {
        // On an hour boundary, so every request of an hour lands in its one roll-up.
        let cutoff = Date(timeIntervalSince1970: (before.timeIntervalSince1970 / 3600).rounded(.down) * 3600)
        return try await database.withConnection("pull ledger roll-up", timeout: database.configuration.migrationTimeout) { c in
            let rows = try await c.rows(
                """
                WITH moved AS (
                    DELETE FROM ledger_requests WHERE at < \(cutoff) RETURNING *
                ), folded AS (
                    INSERT INTO ledger_hours
                      (hour, registry, repository, digest, client, client_kind, served_by, spent_on, pulls, checks, spends, last_pull)
                    SELECT date_trunc('hour', at), registry, repository, digest, client, client_kind, served_by, spent_on,
                           SUM(CASE WHEN pull THEN 1 ELSE 0 END), SUM(CASE WHEN pull THEN 0 ELSE 1 END),
                           SUM(CASE WHEN spent_on <> '' THEN 1 ELSE 0 END), MAX(CASE WHEN pull THEN at END)
                    FROM moved
                    GROUP BY date_trunc('hour', at), registry, repository, digest, client, client_kind, served_by, spent_on
                    ON CONFLICT (hour, registry, repository, digest, client, client_kind, served_by, spent_on) DO UPDATE SET
                      pulls = ledger_hours.pulls + EXCLUDED.pulls, checks = ledger_hours.checks + EXCLUDED.checks,
                      spends = ledger_hours.spends + EXCLUDED.spends,
                      last_pull = GREATEST(ledger_hours.last_pull, EXCLUDED.last_pull)
                )
                SELECT count(*)::bigint FROM moved
                """, logger: self.database.logger)
            return Int(try rows.first?.decode(Int64.self) ?? 0)
        }
    }

    @discardableResult
    public func prunePulls(before: Date) async throws -> Int {
        try await database.withConnection("pull ledger pruning", timeout: database.configuration.migrationTimeout) { c in
            let rows = try await c.rows(
                """
                WITH requests AS (DELETE FROM ledger_requests WHERE at < \(before) RETURNING 1),
                     hours AS (DELETE FROM ledger_hours WHERE hour + interval '1 hour' <= \(before) RETURNING 1)
                SELECT (SELECT count(*) FROM requests) + (SELECT count(*) FROM hours)
                """, logger: self.database.logger)
            return Int(try rows.first?.decode(Int64.self) ?? 0)
        }
    }
}
