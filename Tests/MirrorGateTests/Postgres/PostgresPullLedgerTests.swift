import Foundation
import MirrorGatePostgres
import MirrorGateStorage
import Testing

extension PostgresTests {
    /// The pull ledger on the shared database: the SQLite store's expectations
    /// (``PullLedgerStoreTests``), plus what sharing adds: replicas rolling up at once count
    /// every request once.
    @Suite("PostgresMetadataStore+PullLedger")
    struct PullLedger {
        typealias L = PullLedgerStoreTests

        static func report(_ store: PostgresMetadataStore, since: Date, by: PullReport.Grouping = .repository) async throws -> [PullReport.Row] {
            PullReport(tallies: try await store.pullTallies(since: since), by: by, since: since, generatedAt: L.now).rows
        }

        @Test func requestsAreTalliedBySince() async throws {
            try await TestDatabase.with { database, _, _ in
                let store = PostgresMetadataStore(database: database)
                try await store.recordPulls([
                    L.record(at: 10, servedBy: "hub", spentOn: "hub"),
                    L.record(at: 20),
                    L.record(at: 30, pull: false),
                    L.record("library/redis", at: 7200, digest: "sha256:b"),
                ])
                let rows = try await Self.report(store, since: L.now.addingTimeInterval(-3600))
                #expect(rows == [.init(key: "docker.io/library/alpine", pulls: 2, digests: 1, spent: ["hub": 1], saved: 1, lastPull: L.now.addingTimeInterval(-10))])
                #expect(try await Self.report(store, since: L.now.addingTimeInterval(-86_400)).map(\.key) == ["docker.io/library/alpine", "docker.io/library/redis"])
                #expect(try await store.pullTallies(since: .distantPast).reduce(0) { $0 + $1.checks } == 1)
            }
        }

        @Test func rollUpsKeepReportsAndShrinkTheTable() async throws {
            try await TestDatabase.with { database, _, _ in
                let store = PostgresMetadataStore(database: database)
                var records = (0..<200).map { L.record(at: 3 * 86_400 + Double($0) * 50) }
                records.append(L.record(at: 60, servedBy: "hub", spentOn: "hub"))
                try await store.recordPulls(records)
                let before = try await Self.report(store, since: .distantPast)
                #expect(try await store.rollUpPulls(before: L.now.addingTimeInterval(-2 * 86_400)) == 200)
                #expect(try await store.pullTallies(since: .distantPast).count == 2)
                #expect(try await Self.report(store, since: .distantPast) == before)
                #expect(try await store.rollUpPulls(before: L.now.addingTimeInterval(-2 * 86_400)) == 0)
                try await store.recordPulls([L.record(at: 3 * 86_400 + 10, pull: false)])
                #expect(try await store.rollUpPulls(before: L.now.addingTimeInterval(-2 * 86_400)) == 1)
                #expect(try await Self.report(store, since: .distantPast) == before)
                #expect(try await Self.report(store, since: L.now.addingTimeInterval(-86_400)).map(\.pulls) == [1])
            }
        }

        @Test func retentionDropsOldRequestsAndRollUps() async throws {
            try await TestDatabase.with { database, _, _ in
                let store = PostgresMetadataStore(database: database)
                try await store.recordPulls([L.record(at: 40 * 86_400), L.record(at: 10 * 86_400), L.record(at: 100), L.record(at: 5)])
                try await store.rollUpPulls(before: L.now.addingTimeInterval(-2 * 86_400))
                #expect(try await store.prunePulls(before: L.now.addingTimeInterval(-30 * 86_400)) == 1)
                #expect(try await Self.report(store, since: .distantPast).first?.pulls == 3)
                #expect(try await store.prunePulls(before: L.now.addingTimeInterval(-50)) == 2)
                #expect(try await Self.report(store, since: .distantPast).first?.pulls == 1)
            }
        }

        /// Four replicas roll up the same day at once: each request is folded by exactly one
        /// of them, and the report is what it was.
        @Test func concurrentRollUpsCountEachRequestOnce() async throws {
            try await TestDatabase.with { database, server, name in
                let store = PostgresMetadataStore(database: database)
                try await store.recordPulls((0..<500).map { L.record(at: 3 * 86_400 + Double($0 % 100) * 30, client: "10.0.0.\($0 % 7)") })
                let before = try await Self.report(store, since: .distantPast, by: .client)
                var replicas: [PostgresDatabase] = []
                for _ in 0..<4 {
                    replicas.append(try PostgresDatabase(configuration: server.configuration(database: name, poolSize: 2), logger: TestDatabase.logger))
                }
                let all = replicas
                let folded = try await withThrowingTaskGroup(of: Int.self) { group in
                    for replica in all {
                        group.addTask {
                            try await TestDatabase.running(replica) {
                                try await PostgresMetadataStore(database: replica).rollUpPulls(before: L.now.addingTimeInterval(-2 * 86_400))
                            }
                        }
                    }
                    return try await group.reduce(0, +)
                }
                #expect(folded == 500)
                #expect(try await Self.report(store, since: .distantPast, by: .client) == before)
            }
        }
    }
}
