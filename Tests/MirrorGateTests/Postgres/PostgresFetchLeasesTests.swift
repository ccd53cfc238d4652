import Foundation
import MirrorGatePostgres
import MirrorGateStorage
import RegistryModel
import Testing

extension PostgresTests {
    /// Cross-replica single flight on real PostgreSQL: one winner, takeover with a new
    /// generation, fencing, wake-ups, the atomic completion, janitor leadership.
    @Suite("PostgresFetchLeases")
    struct FetchLeases {
        static let digest = Digest(algorithm: .sha256, hex: String(repeating: "a", count: 64))
        static let key = LeaseKey.blob(registry: "docker.io", digest: digest)

        static func owner(_ name: String) -> LeaseOwner { .replica(name: name, url: "http://127.0.0.\(name.count):5001") }

        /// Makes a lease expire now, by the database's clock (the clock the leases use).
        static func expire(_ key: LeaseKey, server: PostgresServer, database: String) async throws {
            try await server.psql("UPDATE leases SET lease_until = now() - interval '1 second' WHERE key = '\(key.value)'", database: database)
        }

        /// 32 claims at once from 4 replicas (4 pools): exactly one wins; the others see it.
        @Test func exactlyOneOfManyConcurrentClaimsWins() async throws {
            try await TestDatabase.with { database, server, name in
                var stores: [PostgresFetchLeases] = [PostgresFetchLeases(database: database)]
                var others: [PostgresDatabase] = []
                for _ in 0..<3 {
                    let db = try PostgresDatabase(configuration: server.configuration(database: name, poolSize: 4), logger: TestDatabase.logger)
                    others.append(db)
                    stores.append(PostgresFetchLeases(database: db))
                }
                let all = stores
                let claims = try await BudgetLedger.running(others) {
                    try await withThrowingTaskGroup(of: LeaseClaim.self) { group in
                        for i in 0..<32 {
                            group.addTask { try await all[i % 4].claim(Self.key, owner: Self.owner("r\(i)"), ttl: .seconds(20)) }
                        }
                        return try await group.reduce(into: []) { $0.append($1) }
                    }
                }
                let winners = claims.compactMap { if case .won(let lease) = $0 { lease } else { nil } }
                try #require(winners.count == 1)
                for case .held(let holder) in claims {
                    #expect(holder.owner == winners[0].owner)
                    #expect(holder.generation == winners[0].generation)
                    #expect(holder.remaining > .seconds(10))
                }
            }
        }

        /// An expired lease is taken over by exactly one claim, with the generation bumped and the
        /// progress reset; the old holder's heartbeat is then refused (fenced), and its release
        /// does not end the new holder's lease.
        @Test func takeoverAfterExpiryBumpsTheGenerationAndFencesTheOldHolder() async throws {
            try await TestDatabase.with { database, server, name in
                let leases = PostgresFetchLeases(database: database)
                guard case .won(let first) = try await leases.claim(Self.key, owner: Self.owner("a"), ttl: .seconds(20)) else {
                    Issue.record("first claim lost")
                    return
                }
                #expect(try await leases.heartbeat(first, ttl: .seconds(20), size: 1000, bytesDone: 400))
                #expect(try await leases.holder(Self.key)?.bytesDone == 400)
                #expect(try await leases.holder(Self.key)?.size == 1000)
                // Alive: no takeover.
                guard case .held = try await leases.claim(Self.key, owner: Self.owner("b"), ttl: .seconds(20)) else {
                    Issue.record("a live lease was taken over")
                    return
                }
                try await Self.expire(Self.key, server: server, database: name)
                #expect(try await leases.holder(Self.key) == nil, "an expired lease has no live holder")
                let takers = try await withThrowingTaskGroup(of: LeaseClaim.self) { group in
                    for i in 0..<8 { group.addTask { try await leases.claim(Self.key, owner: Self.owner("t\(i)"), ttl: .seconds(20)) } }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                let won = takers.compactMap { if case .won(let lease) = $0 { lease } else { nil } }
                try #require(won.count == 1)
                #expect(won[0].generation > first.generation)
                let holder = try #require(try await leases.holder(Self.key))
                #expect(holder.bytesDone == 0)
                #expect(holder.size == nil)
                #expect(holder.ownerURL == Self.owner("t0").url)
                // The old holder is fenced.
                #expect(try await leases.heartbeat(first, ttl: .seconds(20), size: nil, bytesDone: 999) == false)
                try await leases.release(first)
                #expect(try await leases.holder(Self.key)?.generation == won[0].generation)
                // The new holder releases: the key is free at once.
                try await leases.release(won[0])
                #expect(try await leases.holder(Self.key) == nil)
                guard case .won(let next) = try await leases.claim(Self.key, owner: Self.owner("c"), ttl: .seconds(20)) else {
                    Issue.record("a released key could not be claimed")
                    return
                }
                // A fencing token never repeats, not even after a release.
                #expect(next.generation > won[0].generation)
            }
        }

        /// A waiter on another replica wakes on the release by notification: with a 60 s poll
        /// and a 30 s timeout, it returns with no holder only if it was told.
        @Test func waitForReleaseWakesOnRelease() async throws {
            try await TestDatabase.with(pollInterval: .seconds(60)) { database, server, name in
                let other = try PostgresDatabase(configuration: server.configuration(database: name, pollInterval: .seconds(60)), logger: TestDatabase.logger)
                let leases = PostgresFetchLeases(database: database)
                let waiterSide = PostgresFetchLeases(database: other)
                guard case .won(let lease) = try await leases.claim(Self.key, owner: Self.owner("a"), ttl: .seconds(60)) else {
                    Issue.record("claim lost")
                    return
                }
                try await BudgetLedger.running([other]) {
                    try await withThrowingTaskGroup(of: LeaseHolder?.self) { group in
                        group.addTask { try await waiterSide.waitForRelease(Self.key, generation: lease.generation, timeout: .seconds(30)) }
                        try await Task.sleep(for: .milliseconds(200))
                        try await leases.release(lease)
                        let result = try await group.next()!
                        #expect(result == nil, "the waiter timed out instead of waking on the release")
                    }
                }
            }
        }

        /// A waiter also wakes when the holder's lease runs out without a word (it died).
        @Test func waitForReleaseWakesWhenTheLeaseExpires() async throws {
            try await TestDatabase.with(pollInterval: .seconds(60)) { database, _, _ in
                let leases = PostgresFetchLeases(database: database)
                guard case .won(let lease) = try await leases.claim(Self.key, owner: Self.owner("a"), ttl: .milliseconds(500)) else {
                    Issue.record("claim lost")
                    return
                }
                #expect(try await leases.waitForRelease(Self.key, generation: lease.generation, timeout: .seconds(30)) == nil)
                // And the timeout: a live lease is returned as it is.
                guard case .won(let second) = try await leases.claim(Self.key, owner: Self.owner("b"), ttl: .seconds(60)) else {
                    Issue.record("claim after expiry lost")
                    return
                }
                #expect(try await leases.waitForRelease(Self.key, generation: second.generation, timeout: .milliseconds(300))?.generation == second.generation)
            }
        }

        /// Completing saves the object and its link and frees the key in one transaction: the
        /// next claimer finds the object. A fenced holder's completion still saves (the bytes are
        /// verified) but leaves the new holder's lease alone.
        @Test func completeSavesTheObjectAndFreesTheKey() async throws {
            try await TestDatabase.with { database, server, name in
                let leases = PostgresFetchLeases(database: database)
                let store = PostgresMetadataStore(database: database)
                let record = ObjectRecord(digest: Self.digest, size: 42, mediaType: nil, createdAt: Date(), lastAccess: Date())
                guard case .won(let lease) = try await leases.claim(Self.key, owner: Self.owner("a"), ttl: .seconds(20)) else { Issue.record("lost"); return }
                #expect(try await leases.complete(lease, saving: record, link: (registry: "docker.io", repository: "library/alpine")))
                #expect(try await leases.holder(Self.key) == nil)
                #expect(try await store.object(Self.digest)?.size == 42)
                #expect(try await store.isLinked(Self.digest, registry: "docker.io", repository: "library/alpine"))

                let other = LeaseKey.manifest(registry: "docker.io", repository: "library/alpine", digest: Self.digest)
                guard case .won(let old) = try await leases.claim(other, owner: Self.owner("a"), ttl: .seconds(20)) else { Issue.record("lost"); return }
                try await Self.expire(other, server: server, database: name)
                guard case .won(let new) = try await leases.claim(other, owner: Self.owner("b"), ttl: .seconds(20)) else { Issue.record("lost"); return }
                #expect(try await leases.complete(old, saving: record, link: nil) == false)
                #expect(try await leases.holder(other)?.generation == new.generation)
                #expect(try await leases.leases(heldBy: new.owner) == [new])
            }
        }

        /// One janitor at a time: the leader keeps leading, others wait; when the leader stops
        /// renewing (it died), another takes over within the TTL; resigning hands over at once.
        @Test func oneJanitorAtATime() async throws {
            try await TestDatabase.with { database, _, _ in
                let leases = PostgresFetchLeases(database: database)
                let ownerB = Self.owner("b")
                let a = PostgresJanitorLeadership(leases: leases, owner: Self.owner("a"), ttl: .milliseconds(800), logger: TestDatabase.logger)
                let b = PostgresJanitorLeadership(leases: leases, owner: ownerB, ttl: .milliseconds(800), logger: TestDatabase.logger)
                #expect(await a.mayEvict())
                #expect(await b.mayEvict() == false)
                #expect(await a.mayEvict())
                #expect(await b.mayEvict() == false)
                // a stops renewing.
                let deadline = ContinuousClock.now + .seconds(20)
                while await b.mayEvict() == false, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
                #expect(try await leases.holder(.janitor)?.owner == ownerB.id)
                #expect(await a.mayEvict() == false, "the old leader still evicts after losing leadership")
                await b.resign()
                #expect(await a.mayEvict())
            }
        }
    }
}
