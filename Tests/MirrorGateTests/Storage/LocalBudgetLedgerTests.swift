import Foundation
import Logging
import MirrorGateStorage
import Testing

/// The local ledger with its real SQLite journal: spends, announced limits, 429 blocks,
/// holds given back, and what survives a restart.
@Suite("LocalBudgetLedger")
struct LocalBudgetLedgerTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    static let anonymous = BudgetKey("https://registry-1.docker.io|anonymous")
    static let account = BudgetKey("https://registry-1.docker.io|me")
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func ledger(_ dir: TemporaryDirectory, pulls: Int? = 2, window: TimeInterval = 3600) throws -> LocalBudgetLedger {
        LocalBudgetLedger(
            limits: [anonymous: pulls.map { BudgetLimit(pulls: $0, window: window) }, account: nil],
            journal: try SQLiteMetadataStore(path: dir.path + "/m.sqlite"), logger: logger)
    }

    /// Reserves and settles one successful GET.
    func spend(_ ledger: LocalBudgetLedger, _ key: BudgetKey, at now: Date, answer: BudgetAnswer = BudgetAnswer(status: 200)) async throws {
        guard case .granted(let hold?) = await ledger.reserve(key, now: now) else {
            Issue.record("budget refused a spend")
            return
        }
        await ledger.settle(hold, answer: answer, now: now)
    }

    @Test func configuredBudgetIsSpentThenResetsAfterTheWindow() async throws {
        let dir = try TemporaryDirectory("ledger")
        defer { dir.cleanUp() }
        let ledger = try Self.ledger(dir)
        try await spend(ledger, Self.anonymous, at: Self.t0)
        try await spend(ledger, Self.anonymous, at: Self.t0.addingTimeInterval(10))
        #expect(await ledger.reserve(Self.anonymous, now: Self.t0.addingTimeInterval(20)) == .refused(until: Self.t0.addingTimeInterval(3600)))
        // HEADs and blobs stay free.
        #expect(await ledger.admitFree(Self.anonymous, now: Self.t0.addingTimeInterval(20)) == .granted(nil))
        // One hour after the first spend, one pull is back.
        guard case .granted(.some) = await ledger.reserve(Self.anonymous, now: Self.t0.addingTimeInterval(3601)) else {
            Issue.record("budget did not reset after the window")
            return
        }
        // The authenticated credential has its own (unlimited) budget.
        #expect(await ledger.status(Self.account, now: Self.t0)?.remaining == nil)
    }

    @Test func aHoldCountsUntilReleasedOrSettledWithoutSuccess() async throws {
        let dir = try TemporaryDirectory("ledger")
        defer { dir.cleanUp() }
        let ledger = try Self.ledger(dir, pulls: 1)
        guard case .granted(let hold?) = await ledger.reserve(Self.anonymous, now: Self.t0) else { Issue.record("refused"); return }
        // A second GET while the first is in flight would overspend: refused.
        guard case .refused = await ledger.reserve(Self.anonymous, now: Self.t0) else { Issue.record("two holds on a budget of 1"); return }
        await ledger.release(hold)
        guard case .granted(let second?) = await ledger.reserve(Self.anonymous, now: Self.t0) else { Issue.record("release did not give the pull back"); return }
        // A 404 answer is not a pull.
        await ledger.settle(second, answer: BudgetAnswer(status: 404), now: Self.t0)
        #expect(await ledger.status(Self.anonymous, now: Self.t0)?.remaining == 1)
        // No answer at all (connection reset) is not a pull either.
        guard case .granted(let third?) = await ledger.reserve(Self.anonymous, now: Self.t0) else { Issue.record("refused"); return }
        await ledger.settle(third, answer: nil, now: Self.t0)
        #expect(await ledger.status(Self.anonymous, now: Self.t0)?.remaining == 1)
    }

    @Test func announcedRemainingIsUsedWhenSmaller() async throws {
        let dir = try TemporaryDirectory("ledger")
        defer { dir.cleanUp() }
        let ledger = try Self.ledger(dir, pulls: 100)
        // A free HEAD announces 1 left.
        await ledger.observe(Self.anonymous, answer: BudgetAnswer(status: 200, limit: 100, remaining: 1, window: 21_600), manifestGET: false, now: Self.t0)
        #expect(await ledger.status(Self.anonymous, now: Self.t0)?.remaining == 1)
        try await spend(ledger, Self.anonymous, at: Self.t0.addingTimeInterval(1))
        guard case .refused = await ledger.reserve(Self.anonymous, now: Self.t0.addingTimeInterval(2)) else {
            Issue.record("GET admitted although the upstream announced no pulls left")
            return
        }
        // A later HEAD announcing budget again lifts it.
        await ledger.observe(Self.anonymous, answer: BudgetAnswer(status: 200, remaining: 5, window: 21_600), manifestGET: false, now: Self.t0.addingTimeInterval(60))
        #expect(await ledger.status(Self.anonymous, now: Self.t0.addingTimeInterval(61))?.remaining == 5)
    }

    @Test func a429BlocksGETsUntilRetryAfterAndOnFreeRequestsBlocksEverything() async throws {
        let dir = try TemporaryDirectory("ledger")
        defer { dir.cleanUp() }
        let ledger = try Self.ledger(dir, pulls: nil)
        guard case .granted(let hold?) = await ledger.reserve(Self.anonymous, now: Self.t0) else { Issue.record("refused"); return }
        await ledger.settle(hold, answer: BudgetAnswer(status: 429, retryAfter: Self.t0.addingTimeInterval(120)), now: Self.t0)
        guard case .refused(let until?) = await ledger.reserve(Self.anonymous, now: Self.t0.addingTimeInterval(60)) else {
            Issue.record("GET admitted after a 429")
            return
        }
        #expect(abs(until.timeIntervalSince(Self.t0.addingTimeInterval(120))) < 1)
        #expect(await ledger.admitFree(Self.anonymous, now: Self.t0.addingTimeInterval(60)) == .granted(nil), "HEAD blocked by a GET 429")
        try await spend(ledger, Self.anonymous, at: Self.t0.addingTimeInterval(121))

        await ledger.observe(Self.anonymous, answer: BudgetAnswer(status: 429, retryAfter: Self.t0.addingTimeInterval(230)), manifestGET: false, now: Self.t0.addingTimeInterval(200))
        guard case .refused = await ledger.admitFree(Self.anonymous, now: Self.t0.addingTimeInterval(210)) else { Issue.record("HEAD 429 did not block"); return }
        #expect(await ledger.admitFree(Self.anonymous, now: Self.t0.addingTimeInterval(231)) == .granted(nil), "block outlived Retry-After")
    }

    @Test func blocksOnlyExtend() async throws {
        let dir = try TemporaryDirectory("ledger")
        defer { dir.cleanUp() }
        let ledger = try Self.ledger(dir, pulls: nil)
        await ledger.observe(Self.anonymous, answer: BudgetAnswer(status: 429, retryAfter: Self.t0.addingTimeInterval(300)), manifestGET: false, now: Self.t0)
        // A later 429 with a shorter Retry-After cannot shorten the block.
        await ledger.observe(Self.anonymous, answer: BudgetAnswer(status: 429, retryAfter: Self.t0.addingTimeInterval(20)), manifestGET: false, now: Self.t0.addingTimeInterval(10))
        #expect(await ledger.admitFree(Self.anonymous, now: Self.t0.addingTimeInterval(100)) == .refused(until: Self.t0.addingTimeInterval(300)))
    }

    @Test func spendsAndLearnedLimitsSurviveARestart() async throws {
        let dir = try TemporaryDirectory("ledger")
        defer { dir.cleanUp() }
        let now = Date()
        do {
            let ledger = try Self.ledger(dir, pulls: 3)
            try await spend(ledger, Self.anonymous, at: now.addingTimeInterval(-30))
            try await spend(ledger, Self.anonymous, at: now.addingTimeInterval(-20), answer: BudgetAnswer(status: 200, limit: 10, remaining: 8, window: 3600))
        }
        let restarted = try Self.ledger(dir, pulls: 3)
        await restarted.load(now: now)
        let status = try #require(await restarted.status(Self.anonymous, now: now))
        #expect(status.spentInWindow == 2)
        #expect(status.remaining == 1)
        #expect(status.limit == 3)
    }

    /// A block stored years ahead (an older version persisted any date an upstream sent) is
    /// clamped when loaded instead of trapping later.
    @Test func aFarFutureBlockIsClampedOnLoad() async throws {
        let dir = try TemporaryDirectory("ledger")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/m.sqlite")
        let now = Date()
        try await store.saveBudget(BudgetRecord(
            key: Self.anonymous.value, learnedWindow: 9.2e18, getBlockedUntil: Date(timeIntervalSince1970: 1.8e14), allBlockedUntil: .distantFuture))
        let ledger = try Self.ledger(dir)
        await ledger.load(now: now)
        let status = try #require(await ledger.status(Self.anonymous, now: now))
        let blocked = try #require(status.blockedUntil)
        #expect(blocked <= now.addingTimeInterval(BudgetRecord.maxHorizon))
        guard case .refused(let until?) = await ledger.admitFree(Self.anonymous, now: now) else { Issue.record("block lost"); return }
        #expect(until <= now.addingTimeInterval(BudgetRecord.maxHorizon))
    }
}
