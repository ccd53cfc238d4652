import Foundation
import Logging
import MirrorGateStorage
import PostgresNIO
import RegistryModel

/// ``MetadataStore`` shared by every replica: the tag index, the object index with its
/// repository links and LRU times, and the budget journal, in PostgreSQL.
///
/// It keeps the merge rules of ``TagIndex`` and ``ObjectIndex`` the way a shared store must:
/// - a tag answer replaces the stored one only when it is at least as new (`checked_at`), so a
///   slow replica cannot roll a tag back; its link is recorded either way;
/// - an object's access time only moves forward, in ``touch(_:)`` and in
///   ``saveObject(_:)`` alike (a replica's late save cannot make a hot object look cold);
/// - links are idempotent and go with their object.
///
/// The cache size is the sum over the shared `objects` table: `storage.max_size` caps the
/// cache all replicas share.
public final class PostgresMetadataStore: MetadataStore {
    let database: PostgresDatabase
    private var logger: Logger { database.logger }

    public init(database: PostgresDatabase) {
        self.database = database
    }

    // MARK: TagIndex

    public func tag(registry: String, repository: String, tag: String) async throws -> TagRecord? {
        try await database.withConnection("tag lookup") { c in
            let rows = try await c.rows(
                "SELECT digest, media_type, checked_at, upstream FROM tags WHERE registry = \(registry) AND repository = \(repository) AND tag = \(tag)",
                logger: self.logger)
            guard let (digest, mediaType, checkedAt, upstream) = try rows.first?.decode((String, String, Date, String).self),
                  let parsed = try? Digest(parsing: digest)
            else { return nil }
            return TagRecord(registry: registry, repository: repository, tag: tag, digest: parsed, mediaType: mediaType, checkedAt: checkedAt, upstream: upstream)
        }
    }

    public func saveTag(_ r: TagRecord) async throws {
        try await database.withConnection("tag save") { c in
            // One round trip: the upsert and the link in one statement.
            try await c.run(
                """
                WITH saved AS (
                    INSERT INTO tags (registry, repository, tag, digest, media_type, checked_at, upstream)
                    VALUES (\(r.registry), \(r.repository), \(r.tag), \(r.digest.description), \(r.mediaType), \(r.checkedAt), \(r.upstream))
                    ON CONFLICT (registry, repository, tag) DO UPDATE SET
                        digest = EXCLUDED.digest, media_type = EXCLUDED.media_type,
                        checked_at = EXCLUDED.checked_at, upstream = EXCLUDED.upstream
                    WHERE tags.checked_at <= EXCLUDED.checked_at
                )
                INSERT INTO links (registry, repository, digest) VALUES (\(r.registry), \(r.repository), \(r.digest.description))
                ON CONFLICT DO NOTHING
                """, logger: self.logger)
        }
    }

    // MARK: ObjectIndex

    public func object(_ digest: Digest) async throws -> ObjectRecord? {
        try await database.withConnection("object lookup") { c in
            let rows = try await c.rows(
                "SELECT size, media_type, created_at, last_access FROM objects WHERE digest = \(digest.description)", logger: self.logger)
            guard let (size, mediaType, createdAt, lastAccess) = try rows.first?.decode((Int64, String?, Date, Date).self) else { return nil }
            return ObjectRecord(digest: digest, size: UInt64(max(size, 0)), mediaType: mediaType, createdAt: createdAt, lastAccess: lastAccess)
        }
    }

    public func saveObject(_ r: ObjectRecord) async throws {
        try await database.withConnection("object save") { c in
            try await c.run(Self.saveObjectQuery(r), logger: self.logger)
        }
    }

    static func saveObjectQuery(_ r: ObjectRecord) -> PostgresQuery {
        """
        INSERT INTO objects (digest, size, media_type, created_at, last_access)
        VALUES (\(r.digest.description), \(Int64(clamping: r.size)), \(r.mediaType), \(r.createdAt), \(r.lastAccess))
        ON CONFLICT (digest) DO UPDATE SET
            size = EXCLUDED.size,
            media_type = COALESCE(EXCLUDED.media_type, objects.media_type),
            last_access = GREATEST(objects.last_access, EXCLUDED.last_access)
        """
    }

    static func linkQuery(_ digest: Digest, registry: String, repository: String) -> PostgresQuery {
        "INSERT INTO links (registry, repository, digest) VALUES (\(registry), \(repository), \(digest.description)) ON CONFLICT DO NOTHING"
    }

    public func removeObject(_ digest: Digest) async throws {
        try await database.withConnection("object removal") { c in
            try await c.run(
                """
                WITH gone AS (DELETE FROM objects WHERE digest = \(digest.description))
                DELETE FROM links WHERE digest = \(digest.description)
                """, logger: self.logger)
        }
    }

    public func link(_ digest: Digest, registry: String, repository: String) async throws {
        try await database.withConnection("link save") { c in
            try await c.run(Self.linkQuery(digest, registry: registry, repository: repository), logger: self.logger)
        }
    }

    public func isLinked(_ digest: Digest, registry: String, repository: String) async throws -> Bool {
        try await database.withConnection("link lookup") { c in
            let rows = try await c.rows(
                "SELECT EXISTS (SELECT 1 FROM links WHERE registry = \(registry) AND repository = \(repository) AND digest = \(digest.description))",
                logger: self.logger)
            return try rows.first?.decode(Bool.self) ?? false
        }
    }

    public func touch(_ accesses: [Digest: Date]) async throws {
        guard !accesses.isEmpty else { return }
        let digests = accesses.keys.map(\.description)
        let times = accesses.keys.map { accesses[$0]! }
        try await database.withConnection("access times") { c in
            try await c.run(
                """
                UPDATE objects o SET last_access = GREATEST(o.last_access, v.t)
                FROM unnest(\(digests)::text[], \(times)::timestamptz[]) AS v(d, t)
                WHERE o.digest = v.d
                """, logger: self.logger)
        }
    }

    public func totalSize() async throws -> UInt64 {
        try await usage().bytes
    }

    public func usage() async throws -> (objects: Int, bytes: UInt64) {
        try await database.withConnection("cache size") { c in
            let rows = try await c.rows("SELECT count(*)::bigint, COALESCE(sum(size), 0)::bigint FROM objects", logger: self.logger)
            guard let (count, bytes) = try rows.first?.decode((Int64, Int64).self) else { return (0, 0) }
            return (Int(count), UInt64(max(bytes, 0)))
        }
    }

    public func evictionCandidates(limit: Int) async throws -> [ObjectRecord] {
        try await database.withConnection("eviction candidates") { c in
            let rows = try await c.rows(
                """
                SELECT digest, size, media_type, created_at, last_access FROM objects
                ORDER BY (media_type IS NOT NULL), last_access LIMIT \(Int64(max(limit, 0)))
                """, logger: self.logger)
            return try rows.compactMap { row in
                let (digest, size, mediaType, createdAt, lastAccess) = try row.decode((String, Int64, String?, Date, Date).self)
                guard let parsed = try? Digest(parsing: digest) else { return nil }
                return ObjectRecord(digest: parsed, size: UInt64(max(size, 0)), mediaType: mediaType, createdAt: createdAt, lastAccess: lastAccess)
            }
        }
    }

    public func allObjects() async throws -> [Digest: UInt64] {
        try await database.withConnection("all objects", timeout: database.configuration.migrationTimeout) { c in
            var out: [Digest: UInt64] = [:]
            for try await (digest, size) in try await c.query("SELECT digest, size FROM objects", logger: self.logger).decode((String, Int64).self) {
                if let parsed = try? Digest(parsing: digest) { out[parsed] = UInt64(max(size, 0)) }
            }
            return out
        }
    }
}
