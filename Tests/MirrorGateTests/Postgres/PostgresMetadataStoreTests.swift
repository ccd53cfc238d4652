import Foundation
import MirrorGatePostgres
import MirrorGateStorage
import RegistryModel
import Testing

extension PostgresTests {
    /// The SQLite store's expectations (``MetadataStoreChecklist``) against the shared store,
    /// plus what sharing adds: newest-wins tags, forward-only access times, and a second
    /// replica seeing the first one's writes.
    @Suite("PostgresMetadataStore")
    struct MetadataStore {
        typealias Check = MetadataStoreChecklist

        func withStore(_ body: @escaping @Sendable (PostgresMetadataStore, PostgresDatabase) async throws -> Void) async throws {
            try await TestDatabase.with { database, _, _ in
                try await body(PostgresMetadataStore(database: database), database)
            }
        }

        @Test func saveAndLoadTag() async throws { try await withStore { s, _ in try await Check.saveAndLoadTag(s) } }
        @Test func tagUpsert() async throws { try await withStore { s, _ in try await Check.tagUpsert(s) } }
        @Test func saveAndLoadObjects() async throws { try await withStore { s, _ in try await Check.saveAndLoadObjects(s) } }
        @Test func objectUpsert() async throws { try await withStore { s, _ in try await Check.objectUpsert(s) } }
        @Test func aTagAnswerLinksItsDigest() async throws { try await withStore { s, _ in try await Check.aTagAnswerLinksItsDigest(s) } }
        @Test func touchUsageAndAllObjects() async throws { try await withStore { s, _ in try await Check.touchUsageAndAllObjects(s) } }
        @Test func subSecondDatesAreKeptToTheMillisecond() async throws { try await withStore { s, _ in try await Check.subSecondDatesAreKeptToTheMillisecond(s) } }
        @Test func concurrentSaves() async throws { try await withStore { s, _ in try await Check.concurrentSaves(s) } }

        @Test func evictionCandidatesAreBlobsFirstThenManifestsEachOldestFirst() async throws {
            try await withStore { s, _ in try await Check.evictionCandidatesAreBlobsFirstThenManifestsEachOldestFirst(s) }
        }

        /// "Reopening" is another replica: a second store on the same database.
        @Test func linksAreScopedToRegistryAndRepositoryAndGoWithTheirObject() async throws {
            try await withStore { s, database in
                try await Check.linksAreScopedToRegistryAndRepositoryAndGoWithTheirObject(s) { PostgresMetadataStore(database: database) }
            }
        }

        /// A slow replica saving an older answer cannot roll a tag back; its link still counts.
        @Test func anOlderTagAnswerDoesNotReplaceANewerOne() async throws {
            try await withStore { s, _ in
                let newer = Check.tag(digest: Check.digest("b"), at: Check.t2)
                try await s.saveTag(newer)
                try await s.saveTag(Check.tag(digest: Check.digest("a"), at: Check.t1))
                #expect(try await s.tag(registry: "docker.io", repository: "library/alpine", tag: "latest") == newer)
                #expect(try await s.isLinked(Check.digest("a"), registry: "docker.io", repository: "library/alpine"))
            }
        }

        /// A late save (another replica's) cannot make a recently read object look cold.
        @Test func anObjectSaveNeverMovesTheAccessTimeBack() async throws {
            try await withStore { s, _ in
                let d = Check.digest("8")
                try await s.saveObject(ObjectRecord(digest: d, size: 5, mediaType: nil, createdAt: Check.t1, lastAccess: Check.t3))
                try await s.saveObject(ObjectRecord(digest: d, size: 5, mediaType: nil, createdAt: Check.t1, lastAccess: Check.t1))
                #expect(try await s.object(d)?.lastAccess == Check.t3)
            }
        }

        /// Two replicas (two pools) on one database see each other's tags at once.
        @Test func aTagSavedOnOneReplicaIsServedByAnother() async throws {
            try await TestDatabase.with { database, server, name in
                let other = try PostgresDatabase(configuration: server.configuration(database: name), logger: TestDatabase.logger)
                try await TestDatabase.running(other) {
                    try await PostgresMetadataStore(database: database).saveTag(Check.tag())
                    #expect(try await PostgresMetadataStore(database: other).tag(registry: "docker.io", repository: "library/alpine", tag: "latest") == Check.tag())
                }
            }
        }

        /// The journal side of the store: spends (reserved ones count), pruning, budget records.
        @Test func budgetJournal() async throws {
            try await withStore { s, _ in
                let t0 = Date(timeIntervalSince1970: 1_700_000_000)
                try await s.recordSpend(budget: "b", at: t0)
                try await s.recordSpend(budget: "b", at: t0.addingTimeInterval(10))
                try await s.recordSpend(budget: "c", at: t0.addingTimeInterval(20))
                #expect(try await s.spends(since: t0.addingTimeInterval(5)).map(\.at) == [t0.addingTimeInterval(10), t0.addingTimeInterval(20)])
                try await s.pruneSpends(before: t0.addingTimeInterval(15))
                #expect(try await s.spends(since: .distantPast).map(\.budget) == ["c"])
                let record = BudgetRecord(key: "b", learnedLimit: 100, learnedRemaining: 7, learnedWindow: 21_600, learnedAt: t0, lastError: "429 on a manifest GET")
                try await s.saveBudget(record)
                #expect(try await s.budgets() == [record.clamped(now: Date())])
            }
        }
    }
}
