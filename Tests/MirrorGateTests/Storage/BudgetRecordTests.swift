import Foundation
import MirrorGateStorage
import Testing

/// Budget rows load clamped (security review, finding 2): a row an older gateway wrote after
/// `Retry-After: 9223372036854775807` crashed every later start on its first request.
@Suite("BudgetRecord")
struct BudgetRecordTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let huge = Date(timeIntervalSince1970: 9.223372036854776e18)

    static let outOfRange = BudgetRecord(
        key: "http://127.0.0.1:5000|anonymous", learnedLimit: .max, learnedRemaining: .min, learnedWindow: 9.223372036854776e18,
        learnedAt: huge, getBlockedUntil: huge, allBlockedUntil: .distantFuture, lastError: "429 on a free request")

    @Test func everyValueIsMovedIntoRange() {
        let clamped = Self.outOfRange.clamped(now: Self.now)
        #expect(clamped.learnedLimit == BudgetRecord.maxCount)
        #expect(clamped.learnedRemaining == 0)
        #expect(clamped.learnedWindow == 86_400)
        #expect(clamped.learnedAt == Self.now)
        #expect(clamped.getBlockedUntil == Self.now.addingTimeInterval(86_400))
        #expect(clamped.allBlockedUntil == Self.now.addingTimeInterval(86_400))
        #expect(clamped.key == Self.outOfRange.key && clamped.lastError == Self.outOfRange.lastError)
    }

    @Test func inRangeValuesAreKept() {
        let record = BudgetRecord(
            key: "k", learnedLimit: 100, learnedRemaining: 20, learnedWindow: 21_600, learnedAt: Self.now.addingTimeInterval(-60),
            getBlockedUntil: Self.now.addingTimeInterval(3600), allBlockedUntil: Self.now.addingTimeInterval(-5), lastError: nil)
        #expect(record.clamped(now: Self.now) == record)
        #expect(BudgetRecord(key: "k", learnedWindow: 0).clamped(now: Self.now).learnedWindow == nil)
        #expect(BudgetRecord(key: "k", learnedWindow: -.infinity).clamped(now: Self.now).learnedWindow == nil)
    }

    @Test func theStoreLoadsRowsClamped() async throws {
        let dir = try TemporaryDirectory("sqlite-budget-clamp")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        try await store.saveBudget(Self.outOfRange)
        let loaded = try #require(try await store.budgets().first)
        #expect(loaded.learnedLimit == BudgetRecord.maxCount)
        #expect(loaded.learnedWindow == 86_400)
        let limit = Date().addingTimeInterval(86_400 + 60)
        #expect(try #require(loaded.getBlockedUntil) < limit)
        #expect(try #require(loaded.allBlockedUntil) < limit)
        #expect(try #require(loaded.learnedAt) <= Date())
    }
}
