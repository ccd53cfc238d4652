import Logging
import MirrorGateStorage
import PostgresNIO

/// The shared schema and its migrations. The gateway creates and migrates it itself at start;
/// replicas starting at once take turns under a session advisory lock, so each migration runs
/// exactly once and every replica starts on the same version.
///
/// Migrations only ever add: during a rolling update the older replicas keep running against
/// the newer schema.
public enum PostgresSchema {
    struct Migration: Sendable {
        let version: Int
        let name: String
        let statements: [String]
    }

    /// The key of the advisory lock migrations hold (`hashtext('mirrorgate schema')` would do
    /// as well; a constant is easier to find in `pg_locks`).
    static let migrationLock: Int64 = 0x4D47_5343_4845_4D41  // "MGSCHEMA"

    static let migrations: [Migration] = [
        Migration(version: 1, name: "tags, objects, links, budgets, spends, leases", statements: [
            """
            CREATE TABLE objects (
                digest text PRIMARY KEY,
                size bigint NOT NULL,
                media_type text,
                created_at timestamptz NOT NULL,
                last_access timestamptz NOT NULL
            )
            """,
            // Eviction order: blobs before manifests, least recently used first.
            "CREATE INDEX objects_eviction ON objects ((media_type IS NOT NULL), last_access)",
            """
            CREATE TABLE tags (
                registry text NOT NULL,
                repository text NOT NULL,
                tag text NOT NULL,
                digest text NOT NULL,
                media_type text NOT NULL,
                checked_at timestamptz NOT NULL,
                upstream text NOT NULL,
                PRIMARY KEY (registry, repository, tag)
            )
            """,
            """
            CREATE TABLE links (
                registry text NOT NULL,
                repository text NOT NULL,
                digest text NOT NULL,
                PRIMARY KEY (registry, repository, digest)
            )
            """,
            "CREATE INDEX links_digest ON links (digest)",
            """
            CREATE TABLE budgets (
                key text PRIMARY KEY,
                learned_limit bigint,
                learned_remaining bigint,
                learned_window double precision,
                learned_at timestamptz,
                get_blocked_until timestamptz,
                get_blocked_at timestamptz,
                all_blocked_until timestamptz,
                last_error text
            )
            """,
            // A row is written before the manifest GET goes out ('reserved') and counts as
            // spent until it is settled ('spent') or deleted (nothing spent).
            """
            CREATE TABLE spends (
                id bigserial PRIMARY KEY,
                budget text NOT NULL,
                at timestamptz NOT NULL,
                state text NOT NULL DEFAULT 'reserved' CHECK (state IN ('reserved', 'spent')),
                replica text
            )
            """,
            "CREATE INDEX spends_budget_at ON spends (budget, at)",
            "CREATE INDEX spends_at ON spends (at)",
            // Generations come from one sequence: a fencing token never repeats, not even
            // after a key was released and claimed again.
            "CREATE SEQUENCE lease_generations",
            """
            CREATE TABLE leases (
                key text PRIMARY KEY,
                owner text NOT NULL,
                owner_url text NOT NULL,
                generation bigint NOT NULL DEFAULT nextval('lease_generations'),
                lease_until timestamptz NOT NULL,
                size bigint,
                bytes_done bigint NOT NULL DEFAULT 0
            )
            """,
        ]),
        // The pull ledger (issue 16): keys hold '' rather than NULL so that roll-ups of one
        // combination meet in one row, as in SQLite.
        Migration(version: 2, name: "pull ledger", statements: [
            """
            CREATE TABLE ledger_requests (
                at timestamptz NOT NULL,
                registry text NOT NULL,
                repository text NOT NULL,
                reference text NOT NULL,
                digest text NOT NULL,
                client text NOT NULL,
                client_kind text NOT NULL,
                pull boolean NOT NULL,
                cache text NOT NULL,
                served_by text NOT NULL,
                spent_on text NOT NULL
            )
            """,
            "CREATE INDEX ledger_requests_at ON ledger_requests (at)",
            """
            CREATE TABLE ledger_hours (
                hour timestamptz NOT NULL,
                registry text NOT NULL,
                repository text NOT NULL,
                digest text NOT NULL,
                client text NOT NULL,
                client_kind text NOT NULL,
                served_by text NOT NULL,
                spent_on text NOT NULL,
                pulls bigint NOT NULL,
                checks bigint NOT NULL,
                spends bigint NOT NULL,
                last_pull timestamptz,
                PRIMARY KEY (hour, registry, repository, digest, client, client_kind, served_by, spent_on)
            )
            """,
        ]),
    ]

    /// The newest version this gateway knows.
    public static var currentVersion: Int { migrations.last!.version }

    /// Creates or migrates the schema; returns the versions this call applied.
    @discardableResult
    static func migrate(_ database: PostgresDatabase) async throws -> [Int] {
        let timeout = database.configuration.migrationTimeout
        // The lock waits for another replica's migration, beyond the usual statement timeout.
        return try await database.withDirectConnection("schema migration on \(database.configuration.displayURL)", timeout: timeout) { connection, logger in
            let ms = PostgresDatabase.milliseconds(timeout)
            try await connection.run(PostgresQuery(unsafeSQL: "SET statement_timeout = \(ms)"), logger: logger)
            try await connection.run(PostgresQuery(unsafeSQL: "SET lock_timeout = \(ms)"), logger: logger)
            try await connection.run("SELECT pg_advisory_lock(\(migrationLock))", logger: logger)
            do {
                let applied = try await apply(on: connection, logger: logger)
                try await connection.run("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger)
                try await connection.run("RESET statement_timeout", logger: logger)
                try await connection.run("RESET lock_timeout", logger: logger)
                return applied
            } catch {
                // A session lock outlives a failed statement: give it back (if the connection
                // is gone, so is the lock).
                try? await connection.run("ROLLBACK", logger: logger)
                try? await connection.run("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger)
                try? await connection.run("RESET statement_timeout", logger: logger)
                try? await connection.run("RESET lock_timeout", logger: logger)
                throw error
            }
        }
    }

    private static func apply(on connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        try await connection.run(
            """
            CREATE TABLE IF NOT EXISTS mirrorgate_schema (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """, logger: logger)
        let rows = try await connection.rows("SELECT COALESCE(max(version), 0)::bigint FROM mirrorgate_schema", logger: logger)
        let current = Int(try rows.first?.decode(Int64.self) ?? 0)
        if current > currentVersion {
            logger.warning("the shared schema is newer than this gateway knows; running on it (migrations only add)", metadata: [
                "schema_version": "\(current)", "known_version": "\(currentVersion)",
            ])
        }
        var applied: [Int] = []
        for migration in migrations where migration.version > current {
            try await connection.run("BEGIN", logger: logger)
            for statement in migration.statements {
                try await connection.run(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
            try await connection.run(
                "INSERT INTO mirrorgate_schema (version, name) VALUES (\(migration.version), \(migration.name))", logger: logger)
            try await connection.run("COMMIT", logger: logger)
            logger.notice("migrated the shared schema", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            applied.append(migration.version)
        }
        return applied
    }
}

extension PostgresDatabase {
    /// Creates or migrates the shared schema (safe to call from every replica at once). It uses
    /// a connection of its own, so it runs at start-up before ``run()``. Returns the versions
    /// this call applied (empty when another replica did, or none were due).
    @discardableResult
    public func migrate() async throws -> [Int] {
        try await PostgresSchema.migrate(self)
    }

    /// The schema version in the database (0: none yet).
    public func schemaVersion() async throws -> Int {
        try await withConnection("schema version") { connection in
            // The subquery would fail to plan before the table exists: ask in two steps.
            let exists = try await connection.rows("SELECT to_regclass('mirrorgate_schema') IS NOT NULL", logger: self.logger)
            guard try exists.first?.decode(Bool.self) == true else { return 0 }
            let version = try await connection.rows("SELECT COALESCE(max(version), 0)::bigint FROM mirrorgate_schema", logger: self.logger)
            return Int(try version.first?.decode(Int64.self) ?? 0)
        }
    }
}
