import Foundation
import GRDB

/// The pull ledger in the metadata database: `ledger_requests` (one row per client manifest
/// request, for a day) and `ledger_hours` (hourly roll-ups of older ones). Keys hold `''`
/// rather than NULL (`spent_on` of a request that spent nothing) so that roll-ups of one
/// combination meet in one row.
extension SQLiteMetadataStore: PullLedgerStore {
    static let ledgerSchema = """
        CREATE TABLE ledger_requests (
            at REAL NOT NULL,
            registry TEXT NOT NULL,
            repository TEXT NOT NULL,
            reference TEXT NOT NULL,
            digest TEXT NOT NULL,
            client TEXT NOT NULL,
            client_kind TEXT NOT NULL,
            pull INTEGER NOT NULL,
            cache TEXT NOT NULL,
            served_by TEXT NOT NULL,
            spent_on TEXT NOT NULL
        );
        CREATE INDEX ledger_requests_at ON ledger_requests(at);
        CREATE TABLE ledger_hours (
            hour INTEGER NOT NULL,
            registry TEXT NOT NULL,
            repository TEXT NOT NULL,
            digest TEXT NOT NULL,
            client TEXT NOT NULL,
            client_kind TEXT NOT NULL,
            served_by TEXT NOT NULL,
            spent_on TEXT NOT NULL,
            pulls INTEGER NOT NULL,
            checks INTEGER NOT NULL,
            spends INTEGER NOT NULL,
            last_pull REAL,
            PRIMARY KEY (hour, registry, repository, digest, client, client_kind, served_by, spent_on)
        ) WITHOUT ROWID;
        """

    public func recordPulls(_ records: [PullRecord]) async throws {
        guard !records.isEmpty else { return }
        try await wrap {
            try await pool.write { db in
                let statement = try db.cachedStatement(sql: """
                    INSERT INTO ledger_requests
                      (at, registry, repository, reference, digest, client, client_kind, pull, cache, served_by, spent_on)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
                for r in records {
                    try statement.execute(arguments: [
                        r.at.timeIntervalSince1970, r.registry, r.repository, r.reference, r.digest, r.client, r.clientKind.rawValue,
                        r.isPull ? 1 : 0, r.cache, r.servedBy, r.spentOn ?? "",
                    ])
                }
            }
        }
    }

    public func pullTallies(since: Date) async throws -> [PullTally] {
        try await wrap {
            try await pool.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT registry, repository, digest, client, client_kind, served_by, spent_on,
                           SUM(pulls) AS pulls, SUM(checks) AS checks, SUM(spends) AS spends, MAX(last_pull) AS last_pull
                    FROM (
                        SELECT registry, repository, digest, client, client_kind, served_by, spent_on,
                               pull AS pulls, 1 - pull AS checks, spent_on != '' AS spends,
                               CASE WHEN pull = 1 THEN at END AS last_pull
                        FROM ledger_requests WHERE at >= :since
                        UNION ALL
                        SELECT registry, repository, digest, client, client_kind, served_by, spent_on, pulls, checks, spends, last_pull
                        FROM ledger_hours WHERE hour >= :since
                    )
                    GROUP BY registry, repository, digest, client, client_kind, served_by, spent_on
                    """, arguments: ["since": since.timeIntervalSince1970]
                ).map { row in
                    let spentOn: String = row["spent_on"]
                    return PullTally(
                        registry: row["registry"], repository: row["repository"], digest: row["digest"], client: row["client"],
                        clientKind: ClientKind(rawValue: row["client_kind"]) ?? .other, servedBy: row["served_by"],
                        spentOn: spentOn.isEmpty ? nil : spentOn,
                        pulls: row["pulls"], checks: row["checks"], spends: row["spends"],
                        lastPull: (row["last_pull"] as Double?).map(Date.init(timeIntervalSince1970:)))
                }
            }
        }
    }

    @discardableResult
    public func rollUpPulls(before: Date) async throws -> Int {
        // On an hour boundary, so every request of an hour lands in its one roll-up and
        // reports can take requests from the cutoff on and whole hours before it.
        let cutoff = (before.timeIntervalSince1970 / 3600).rounded(.down) * 3600
        return try await wrap {
            try await pool.write { db in
                try db.execute(sql: """
                    INSERT INTO ledger_hours
                      (hour, registry, repository, digest, client, client_kind, served_by, spent_on, pulls, checks, spends, last_pull)
                    SELECT CAST(at / 3600 AS INTEGER) * 3600, registry, repository, digest, client, client_kind, served_by, spent_on,
                           SUM(pull), SUM(1 - pull), SUM(spent_on != ''), MAX(CASE WHEN pull = 1 THEN at END)
                    FROM ledger_requests WHERE at < :cutoff
                    GROUP BY CAST(at / 3600 AS INTEGER), registry, repository, digest, client, client_kind, served_by, spent_on
                    ON CONFLICT (hour, registry, repository, digest, client, client_kind, served_by, spent_on) DO UPDATE SET
                      pulls = pulls + excluded.pulls, checks = checks + excluded.checks, spends = spends + excluded.spends,
                      last_pull = MAX(COALESCE(last_pull, excluded.last_pull), COALESCE(excluded.last_pull, last_pull))
                    """, arguments: ["cutoff": cutoff])
                try db.execute(sql: "DELETE FROM ledger_requests WHERE at < ?", arguments: [cutoff])
                return db.changesCount
            }
        }
    }

    @discardableResult
    public func prunePulls(before: Date) async throws -> Int {
        let cutoff = before.timeIntervalSince1970
        return try await wrap {
            try await pool.write { db in
                try db.execute(sql: "DELETE FROM ledger_requests WHERE at < ?", arguments: [cutoff])
                let requests = db.changesCount
                try db.execute(sql: "DELETE FROM ledger_hours WHERE hour + 3600 <= ?", arguments: [cutoff])
                return requests + db.changesCount
            }
        }
    }
}
