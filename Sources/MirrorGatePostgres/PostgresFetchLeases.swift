import Foundation
import Logging
import MirrorGateStorage
import PostgresNIO

/// ``FetchLeases`` in the shared `leases` table: one row per key, with the holder, its peer
/// URL, a fencing generation and an expiry by PostgreSQL's `now()`.
///
/// - Claim: `INSERT … ON CONFLICT (key) DO UPDATE SET …, generation = EXCLUDED.generation
///   WHERE leases.lease_until < now() RETURNING generation` (a new generation from the
///   `lease_generations` sequence). A live row makes the update's
///   `WHERE` false (re-checked on the newest row version after a lock wait), so exactly one of
///   any number of concurrent claims gets a row back.
/// - Heartbeat: `UPDATE … WHERE key = $1 AND owner = $2 AND generation = $3 RETURNING` — no
///   row once another replica took the key over.
/// - Release and complete delete the exact row and `NOTIFY mirrorgate, 'lease:<key>'`, which
///   wakes waiters on every replica at commit; waiters also poll, and wake by themselves when
///   the lease they wait on runs out.
public final class PostgresFetchLeases: FetchLeases {
    let database: PostgresDatabase
    private var logger: Logger { database.logger }

    public init(database: PostgresDatabase) {
        self.database = database
    }

    static func payload(_ key: LeaseKey) -> String { "lease:\(key.value)" }

    static func seconds(_ d: Duration) -> Double {
        let (s, atto) = d.components
        return Double(s) + Double(atto) / 1e18
    }

    public func claim(_ key: LeaseKey, owner: LeaseOwner, ttl: Duration) async throws -> LeaseClaim {
        let ttlSeconds = Self.seconds(ttl)
        // A holder that releases between our failed claim and our look-up leaves nothing to
        // see: claim again (a few times at most; each miss means someone else made progress).
        for _ in 0..<5 {
            let generation = try await database.withConnection("lease claim") { c in
                try await c.rows(
                    """
                    INSERT INTO leases (key, owner, owner_url, lease_until)
                    VALUES (\(key.value), \(owner.id), \(owner.url), now() + \(ttlSeconds) * interval '1 second')
                    ON CONFLICT (key) DO UPDATE SET
                        owner = EXCLUDED.owner, owner_url = EXCLUDED.owner_url, lease_until = EXCLUDED.lease_until,
                        generation = EXCLUDED.generation, bytes_done = 0, size = NULL
                    WHERE leases.lease_until < now()
                    RETURNING generation
                    """, logger: self.logger
                ).first.map { try $0.decode(Int64.self) }
            }
            if let generation { return .won(FetchLease(key: key, owner: owner.id, generation: generation)) }
            if let holder = try await holder(key) { return .held(holder) }
        }
        throw StorageError(.unavailable, operation: "lease claim", cause: "the lease on \(key) changed hands too often to claim")
    }

    public func heartbeat(_ lease: FetchLease, ttl: Duration, size: UInt64?, bytesDone: UInt64) async throws -> Bool {
        let ttlSeconds = Self.seconds(ttl)
        return try await database.withConnection("lease heartbeat") { c in
            try await !c.rows(
                """
                UPDATE leases SET lease_until = now() + \(ttlSeconds) * interval '1 second',
                    bytes_done = \(Int64(clamping: bytesDone)), size = COALESCE(\(size.map { Int64(clamping: $0) }), size)
                WHERE key = \(lease.key.value) AND owner = \(lease.owner) AND generation = \(lease.generation)
                RETURNING 1
                """, logger: self.logger
            ).isEmpty
        }
    }

    public func release(_ lease: FetchLease) async throws {
        try await database.withConnection("lease release") { c in
            try await c.run(
                """
                WITH gone AS (
                    DELETE FROM leases WHERE key = \(lease.key.value) AND owner = \(lease.owner) AND generation = \(lease.generation) RETURNING 1
                )
                SELECT pg_notify(\(PostgresDatabase.channel), \(Self.payload(lease.key))) FROM gone
                """, logger: self.logger)
        }
    }

    @discardableResult
    public func complete(_ lease: FetchLease, saving object: ObjectRecord, link: (registry: String, repository: String)?) async throws -> Bool {
        try await database.transaction("lease completion") { c in
            try await c.run(PostgresMetadataStore.saveObjectQuery(object), logger: self.logger)
            if let link {
                try await c.run(PostgresMetadataStore.linkQuery(object.digest, registry: link.registry, repository: link.repository), logger: self.logger)
            }
            let held = try await !c.rows(
                "DELETE FROM leases WHERE key = \(lease.key.value) AND owner = \(lease.owner) AND generation = \(lease.generation) RETURNING 1",
                logger: self.logger
            ).isEmpty
            try await PostgresDatabase.notify(Self.payload(lease.key), on: c, logger: self.logger)
            return held
        }
    }

    public func holder(_ key: LeaseKey) async throws -> LeaseHolder? {
        try await database.withConnection("lease lookup") { c in
            let rows = try await c.rows(
                """
                SELECT owner, owner_url, generation, size, bytes_done,
                       (EXTRACT(EPOCH FROM (lease_until - now())) * 1000)::bigint
                FROM leases WHERE key = \(key.value) AND lease_until >= now()
                """, logger: self.logger)
            guard let (owner, url, generation, size, done, remaining) = try rows.first?.decode((String, String, Int64, Int64?, Int64, Int64).self) else {
                return nil
            }
            return LeaseHolder(
                key: key, owner: owner, ownerURL: url, generation: generation, size: size.map { UInt64(max($0, 0)) },
                bytesDone: UInt64(max(done, 0)), remaining: .milliseconds(max(remaining, 0)))
        }
    }

    public func waitForRelease(_ key: LeaseKey, generation: Int64, timeout: Duration) async throws -> LeaseHolder? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        let poll = database.configuration.pollInterval
        while true {
            // Register first: a release between the look-up and the wait still wakes us.
            let ticket = database.hub.register(Self.payload(key))
            let current: LeaseHolder?
            do {
                current = try await holder(key)
            } catch {
                database.hub.drop(ticket)
                throw error
            }
            let left = deadline - clock.now
            guard let current, current.generation == generation, left > .zero, !Task.isCancelled else {
                database.hub.drop(ticket)
                return current
            }
            // Also wake when the lease runs out (its holder died without a word).
            await database.hub.wait(ticket, timeout: min(poll, left, current.remaining + .milliseconds(20)))
        }
    }

    /// Leases whose holder is `owner` (for a replica that stops: it releases them, so waiters
    /// take over at once instead of at expiry).
    public func leases(heldBy owner: String) async throws -> [FetchLease] {
        try await database.withConnection("lease list") { c in
            try await c.rows("SELECT key, generation FROM leases WHERE owner = \(owner)", logger: self.logger).map { row in
                let (key, generation) = try row.decode((String, Int64).self)
                return FetchLease(key: LeaseKey(key), owner: owner, generation: generation)
            }
        }
    }
}
