import Foundation
import MirrorGatePostgres
import MirrorGateStorage
import Testing

/// The database goes away while the gateway runs, then comes back. Its own server: it stops it.
@Suite("PostgreSQL outage", .enabled(if: postgresAvailable, Comment(rawValue: PostgresServer.skipMessage)), .timeLimit(.minutes(3)))
struct PostgresOutageTests {
    typealias Check = MetadataStoreChecklist

    /// Stopped: every call throws `.unavailable` (bounded by the query timeout, or at once
    /// while another call probes), spends are refused, leases cannot be had. Restarted: the
    /// pool reconnects by itself and everything works again, with nothing done by the caller.
    @Test func everyCallFailsAsUnavailableThenRecoversWhenTheDatabaseReturns() async throws {
        let server = try await PostgresServer.start()
        do {
            let name = try await server.createDatabase()
            let database = try PostgresDatabase(
                configuration: server.configuration(database: name, queryTimeout: .seconds(2)), logger: TestDatabase.logger)
            let store = PostgresMetadataStore(database: database)
            let leases = PostgresFetchLeases(database: database)
            let ledger = PostgresBudgetLedger(
                limits: [BudgetLedgerChecklist.anonymous: BudgetLimit(pulls: 100, window: 3600)], database: database, replica: "r", logger: TestDatabase.logger)
            let record = Check.tag()
            try await TestDatabase.running(database) {
                try await database.migrate()
                try await store.saveTag(record)
                #expect(database.health.reachable)

                await server.stopServer()
                for attempt in 0..<6 {
                    do {
                        _ = try await store.tag(registry: record.registry, repository: record.repository, tag: record.tag)
                        Issue.record("a read succeeded with the database stopped (attempt \(attempt))")
                    } catch let error as StorageError {
                        #expect(error.code == .unavailable, "\(error)")
                    }
                }
                await #expect(throws: StorageError.self) { try await store.saveObject(ObjectRecord(digest: Check.digest("1"), size: 1, mediaType: nil, createdAt: Date(), lastAccess: Date())) }
                await #expect(throws: StorageError.self) { try await leases.claim(.janitor, owner: .replica(name: "r", url: "http://r"), ttl: .seconds(5)) }
                #expect(await ledger.reserve(BudgetLedgerChecklist.anonymous, now: Date()) == .refused(until: nil))
                #expect(database.health.reachable == false)
                #expect(database.health.reason != nil)

                try await server.startServer()
                let deadline = ContinuousClock.now + .seconds(120)
                var back: TagRecord?
                while back == nil, ContinuousClock.now < deadline {
                    back = try? await store.tag(registry: record.registry, repository: record.repository, tag: record.tag)
                    if back == nil { try await Task.sleep(for: .milliseconds(200)) }
                }
                #expect(back == record, "the store did not recover after the database came back")
                #expect(database.health.reachable)
                guard case .granted(.some) = await ledger.reserve(BudgetLedgerChecklist.anonymous, now: Date()) else {
                    Issue.record("no spend after the database came back")
                    return
                }
                guard case .won = try await leases.claim(.janitor, owner: .replica(name: "r", url: "http://r"), ttl: .seconds(5)) else {
                    Issue.record("no lease after the database came back")
                    return
                }
            }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
        #expect(server.pid == nil)
    }
}
