import Foundation
import GRDB
import RegistryModel

/// ``MetadataStore`` in a SQLite database in WAL mode (through GRDB), which survives
/// `kill -9` at any instant: every save is one committed transaction.
public final class SQLiteMetadataStore: MetadataStore {
    let pool: DatabasePool

    /// Opens or creates the database at `path` and migrates its schema.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw StorageError.metadata("cannot open \(path): \(error)")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE objects (
                    digest TEXT PRIMARY KEY NOT NULL,
                    size INTEGER NOT NULL,
                    media_type TEXT,
                    created_at REAL NOT NULL,
                    last_access REAL NOT NULL
                );
                CREATE INDEX objects_last_access ON objects(last_access);
                CREATE TABLE tags (
                    registry TEXT NOT NULL,
                    repository TEXT NOT NULL,
                    tag TEXT NOT NULL,
                    digest TEXT NOT NULL,
                    media_type TEXT NOT NULL,
                    checked_at REAL NOT NULL,
                    upstream TEXT NOT NULL,
                    PRIMARY KEY (registry, repository, tag)
                );
                """)
        }
        migrator.registerMigration("v2-budgets") { db in
            try db.execute(sql: """
                CREATE TABLE spends (budget TEXT NOT NULL, at REAL NOT NULL);
                CREATE INDEX spends_at ON spends(at);
                CREATE TABLE budgets (
                    key TEXT PRIMARY KEY NOT NULL,
                    learned_limit INTEGER,
                    learned_remaining INTEGER,
                    learned_window REAL,
                    learned_at REAL,
                    get_blocked_until REAL,
                    all_blocked_until REAL,
                    last_error TEXT
                );
                """)
        }
        migrator.registerMigration("v3-links") { db in
            // A tag answer is an upstream's word that the repository holds the digest: the
            // links of content cached before links existed start from the tags.
            try db.execute(sql: """
                CREATE TABLE links (
                    digest TEXT NOT NULL,
                    registry TEXT NOT NULL,
                    repository TEXT NOT NULL,
                    PRIMARY KEY (registry, repository, digest)
                ) WITHOUT ROWID;
                CREATE INDEX links_digest ON links(digest);
                INSERT OR IGNORE INTO links (digest, registry, repository) SELECT digest, registry, repository FROM tags;
                CREATE INDEX objects_eviction ON objects((media_type IS NOT NULL), last_access);
                """)
        }
        migrator.registerMigration("v4-ledger") { db in try db.execute(sql: Self.ledgerSchema) }
        return migrator
    }

    public func touch(_ accesses: [Digest: Date]) async throws {
        guard !accesses.isEmpty else { return }
        try await wrap {
            try await pool.write { db in
                for (digest, at) in accesses {
                    try db.execute(
                        sql: "UPDATE objects SET last_access = MAX(last_access, ?) WHERE digest = ?",
                        arguments: [at.timeIntervalSince1970, digest.description])
                }
            }
        }
    }

    public func totalSize() async throws -> UInt64 {
        try await wrap {
            try await pool.read { db in
                UInt64(try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(size), 0) FROM objects") ?? 0)
            }
        }
    }

    public func usage() async throws -> (objects: Int, bytes: UInt64) {
        try await wrap {
            try await pool.read { db in
                let row = try Row.fetchOne(db, sql: "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM objects")
                return (Int(row?[0] as Int64? ?? 0), UInt64(row?[1] as Int64? ?? 0))
            }
        }
    }

    public func evictionCandidates(limit: Int) async throws -> [ObjectRecord] {
        try await wrap {
            try await pool.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT digest, size, media_type, created_at, last_access FROM objects ORDER BY (media_type IS NOT NULL), last_access LIMIT ?",
                    arguments: [limit])
                    .compactMap { row in
                        guard let digest = try? Digest(parsing: row["digest"] as String) else { return nil }
                        return ObjectRecord(
                            digest: digest, size: UInt64(row["size"] as Int64), mediaType: row["media_type"],
                            createdAt: Date(timeIntervalSince1970: row["created_at"]), lastAccess: Date(timeIntervalSince1970: row["last_access"]))
                    }
            }
        }
    }

    public func allObjects() async throws -> [Digest: UInt64] {
        try await wrap {
            try await pool.read { db in
                var out: [Digest: UInt64] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT digest, size FROM objects") {
                    if let digest = try? Digest(parsing: row["digest"] as String) { out[digest] = UInt64(row["size"] as Int64) }
                }
                return out
            }
        }
    }

    public func recordSpend(budget: String, at: Date) async throws {
        try await wrap {
            try await pool.write { db in
                try db.execute(sql: "INSERT INTO spends (budget, at) VALUES (?, ?)", arguments: [budget, at.timeIntervalSince1970])
            }
        }
    }

    public func spends(since: Date) async throws -> [(budget: String, at: Date)] {
        try await wrap {
            try await pool.read { db in
                try Row.fetchAll(db, sql: "SELECT budget, at FROM spends WHERE at >= ? ORDER BY at", arguments: [since.timeIntervalSince1970])
                    .map { (budget: $0["budget"] as String, at: Date(timeIntervalSince1970: $0["at"])) }
            }
        }
    }

    public func pruneSpends(before: Date) async throws {
        try await wrap {
            try await pool.write { db in
                try db.execute(sql: "DELETE FROM spends WHERE at < ?", arguments: [before.timeIntervalSince1970])
            }
        }
    }

    public func saveBudget(_ r: BudgetRecord) async throws {
        try await wrap {
            try await pool.write { db in
                try db.execute(
                    sql: """
                        INSERT OR REPLACE INTO budgets
                          (key, learned_limit, learned_remaining, learned_window, learned_at, get_blocked_until, all_blocked_until, last_error)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        r.key, r.learnedLimit, r.learnedRemaining, r.learnedWindow, r.learnedAt?.timeIntervalSince1970,
                        r.getBlockedUntil?.timeIntervalSince1970, r.allBlockedUntil?.timeIntervalSince1970, r.lastError,
                    ])
            }
        }
    }

    /// Every budget, clamped (``BudgetRecord/clamped(now:)``): the values came from upstreams
    /// and from older versions, and a row a tool or an older version wrote can hold a REAL
    /// where an integer belongs, which GRDB's typed subscripts would trap on.
    public func budgets() async throws -> [BudgetRecord] {
        let now = Date()
        return try await wrap {
            try await pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM budgets").compactMap { row -> BudgetRecord? in
                    func number(_ column: String) -> Double? {
                        switch (row[column] as DatabaseValue).storage {
                        case .int64(let n): Double(n)
                        case .double(let x): x.isFinite ? x : nil
                        default: nil
                        }
                    }
                    // Saturating: `Int(_:)` traps on a Double past Int.max.
                    func integer(_ column: String) -> Int? {
                        number(column).map { $0 >= 0x1p63 ? Int.max : $0 <= -0x1p63 ? Int.min : Int($0) }
                    }
                    func date(_ column: String) -> Date? { number(column).map(Date.init(timeIntervalSince1970:)) }
                    guard let key = String.fromDatabaseValue(row["key"]) else { return nil }
                    return BudgetRecord(
                        key: key, learnedLimit: integer("learned_limit"), learnedRemaining: integer("learned_remaining"),
                        learnedWindow: number("learned_window"), learnedAt: date("learned_at"),
                        getBlockedUntil: date("get_blocked_until"), allBlockedUntil: date("all_blocked_until"),
                        lastError: String.fromDatabaseValue(row["last_error"])
                    ).clamped(now: now)
                }
            }
        }
    }

    public func tag(registry: String, repository: String, tag: String) async throws -> TagRecord? {
        try await wrap {
            try await pool.read { db in
                guard let row = try Row.fetchOne(
                    db, sql: "SELECT digest, media_type, checked_at, upstream FROM tags WHERE registry = ? AND repository = ? AND tag = ?",
                    arguments: [registry, repository, tag])
                else { return nil }
                guard let digest = try? Digest(parsing: row["digest"] as String) else { return nil }
                return TagRecord(
                    registry: registry, repository: repository, tag: tag, digest: digest,
                    mediaType: row["media_type"], checkedAt: Date(timeIntervalSince1970: row["checked_at"]),
                    upstream: row["upstream"])
            }
        }
    }

    public func saveTag(_ r: TagRecord) async throws {
        try await wrap {
            try await pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO tags (registry, repository, tag, digest, media_type, checked_at, upstream)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT(registry, repository, tag) DO UPDATE SET
                          digest = excluded.digest, media_type = excluded.media_type,
                          checked_at = excluded.checked_at, upstream = excluded.upstream
                        """,
                    arguments: [r.registry, r.repository, r.tag, r.digest.description, r.mediaType, r.checkedAt.timeIntervalSince1970, r.upstream])
                try db.execute(
                    sql: "INSERT OR IGNORE INTO links (digest, registry, repository) VALUES (?, ?, ?)",
                    arguments: [r.digest.description, r.registry, r.repository])
            }
        }
    }

    public func object(_ digest: Digest) async throws -> ObjectRecord? {
        try await wrap {
            try await pool.read { db in
                guard let row = try Row.fetchOne(
                    db, sql: "SELECT size, media_type, created_at, last_access FROM objects WHERE digest = ?",
                    arguments: [digest.description])
                else { return nil }
                return ObjectRecord(
                    digest: digest, size: UInt64(row["size"] as Int64), mediaType: row["media_type"],
                    createdAt: Date(timeIntervalSince1970: row["created_at"]),
                    lastAccess: Date(timeIntervalSince1970: row["last_access"]))
            }
        }
    }

    public func saveObject(_ r: ObjectRecord) async throws {
        try await wrap {
            try await pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO objects (digest, size, media_type, created_at, last_access) VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT(digest) DO UPDATE SET size = excluded.size,
                          media_type = COALESCE(excluded.media_type, objects.media_type), last_access = excluded.last_access
                        """,
                    arguments: [r.digest.description, Int64(r.size), r.mediaType, r.createdAt.timeIntervalSince1970, r.lastAccess.timeIntervalSince1970])
            }
        }
    }

    public func removeObject(_ digest: Digest) async throws {
        try await wrap {
            try await pool.write { db in
                try db.execute(sql: "DELETE FROM objects WHERE digest = ?", arguments: [digest.description])
                try db.execute(sql: "DELETE FROM links WHERE digest = ?", arguments: [digest.description])
            }
        }
    }

    public func link(_ digest: Digest, registry: String, repository: String) async throws {
        try await wrap {
            try await pool.write { db in
                try db.execute(
                    sql: "INSERT OR IGNORE INTO links (digest, registry, repository) VALUES (?, ?, ?)",
                    arguments: [digest.description, registry, repository])
            }
        }
    }

    public func isLinked(_ digest: Digest, registry: String, repository: String) async throws -> Bool {
        try await wrap {
            try await pool.read { db in
                try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM links WHERE registry = ? AND repository = ? AND digest = ?)",
                    arguments: [registry, repository, digest.description]) ?? false
            }
        }
    }

    func wrap<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError.metadata("\(error)")
        }
    }
}
