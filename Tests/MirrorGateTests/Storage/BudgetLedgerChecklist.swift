import Foundation
import MirrorGateStorage
import Testing

/// Makes ledgers over one journal or database, for ``BudgetLedgerChecklist``.
struct LedgerFixture: Sendable {
    /// A new ledger on the shared data: the anonymous budget limited to `pulls` per `window`
    /// (nil: only what the upstream announces), the account budget unlimited. A second call is
    /// a restart (or another replica).
    let make: @Sendable (_ pulls: Int?, _ window: TimeInterval) async throws -> any BudgetLedger
    /// What a ledger does at start before serving.
    let load: @Sendable (any BudgetLedger, Date) async throws -> Void
    /// Writes a budget record straight into the journal (as an older version could have).
    let saveBudget: @Sendable (BudgetRecord) async throws -> Void

    func ledger(pulls: Int? = 2, window: TimeInterval = 3600) async throws -> any BudgetLedger {
        try await make(pulls, window)
    }
}

/// What every ``BudgetLedger`` must do: spends, announced limits, 429 blocks, holds given
/// back, and what survives a restart. Run against ``LocalBudgetLedger`` with its SQLite journal
/// and against the shared ``PostgresBudgetLedger``.
enum BudgetLedgerChecklist {
    static let anonymous = BudgetKey("https://registry-1.docker.io|anonymous")
    static let account = BudgetKey("https://registry-1.docker.io|me")
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// Reserves and settles one successful GET.
    static func spend(_ ledger: any BudgetLedger, _ key: BudgetKey, at now: Date, answer: BudgetAnswer = BudgetAnswer(status: 200)) async throws {
        guard case .granted(let hold?) = await ledger.reserve(key, now: now) else {
            Issue.record("budget refused a spend")
            return
        }
        await ledger.settle(hold, answer: answer, now: now)
    }

    static func configuredBudgetIsSpentThenResetsAfterTheWindow(_ f: LedgerFixture) async throws {
        let ledger = try await f.ledger()
        try await spend(ledger, anonymous, at: t0)
        try await spend(ledger, anonymous, at: t0.addingTimeInterval(10))
        #expect(await ledger.reserve(anonymous, now: t0.addingTimeInterval(20)) == .refused(until: t0.addingTimeInterval(3600)))
        // HEADs and blobs stay free.
        #expect(await ledger.admitFree(anonymous, now: t0.addingTimeInterval(20)) == .granted(nil))
        // One hour after the first spend, one pull is back.
        guard case .granted(.some) = await ledger.reserve(anonymous, now: t0.addingTimeInterval(3601)) else {
            Issue.record("budget did not reset after the window")
            return
        }
        // The authenticated credential has its own (unlimited) budget.
        #expect(await ledger.status(account, now: t0)?.remaining == nil)
    }

    static func aHoldCountsUntilReleasedOrSettledWithoutSuccess(_ f: LedgerFixture) async throws {
        let ledger = try await f.ledger(pulls: 1)
        guard case .granted(let hold?) = await ledger.reserve(anonymous, now: t0) else { Issue.record("refused"); return }
        // A second GET while the first is in flight would overspend: refused.
        guard case .refused = await ledger.reserve(anonymous, now: t0) else { Issue.record("two holds on a budget of 1"); return }
        await ledger.release(hold)
        guard case .granted(let second?) = await ledger.reserve(anonymous, now: t0) else { Issue.record("release did not give the pull back"); return }
        // A 404 answer is not a pull.
        await ledger.settle(second, answer: BudgetAnswer(status: 404), now: t0)
        #expect(await ledger.status(anonymous, now: t0)?.remaining == 1)
        // No answer at all (connection reset) is not a pull either.
        guard case .granted(let third?) = await ledger.reserve(anonymous, now: t0) else { Issue.record("refused"); return }
        await ledger.settle(third, answer: nil, now: t0)
        #expect(await ledger.status(anonymous, now: t0)?.remaining == 1)
    }

    static func announcedRemainingIsUsedWhenSmaller(_ f: LedgerFixture) async throws {
        let ledger = try await f.ledger(pulls: 100)
        // A free HEAD announces 1 left.
        await ledger.observe(anonymous, answer: BudgetAnswer(status: 200, limit: 100, remaining: 1, window: 21_600), manifestGET: false, now: t0)
        #expect(await ledger.status(anonymous, now: t0)?.remaining == 1)
        try await spend(ledger, anonymous, at: t0.addingTimeInterval(1))
        guard case .refused = await ledger.reserve(anonymous, now: t0.addingTimeInterval(2)) else {
            Issue.record("GET admitted although the upstream announced no pulls left")
            return
        }
        // A later HEAD announcing budget again lifts it.
        await ledger.observe(anonymous, answer: BudgetAnswer(status: 200, remaining: 5, window: 21_600), manifestGET: false, now: t0.addingTimeInterval(60))
        #expect(await ledger.status(anonymous, now: t0.addingTimeInterval(61))?.remaining == 5)
    }

    static func a429BlocksGETsUntilRetryAfterAndOnFreeRequestsBlocksEverything(_ f: LedgerFixture) async throws {
        let ledger = try await f.ledger(pulls: nil)
        guard case .granted(let hold?) = await ledger.reserve(anonymous, now: t0) else { Issue.record("refused"); return }
        await ledger.settle(hold, answer: BudgetAnswer(status: 429, retryAfter: t0.addingTimeInterval(120)), now: t0)
        guard case .refused(let until?) = await ledger.reserve(anonymous, now: t0.addingTimeInterval(60)) else {
            Issue.record("GET admitted after a 429")
            return
        }
        #expect(abs(until.timeIntervalSince(t0.addingTimeInterval(120))) < 1)
        #expect(await ledger.admitFree(anonymous, now: t0.addingTimeInterval(60)) == .granted(nil), "HEAD blocked by a GET 429")
        try await spend(ledger, anonymous, at: t0.addingTimeInterval(121))

        await ledger.observe(anonymous, answer: BudgetAnswer(status: 429, retryAfter: t0.addingTimeInterval(230)), manifestGET: false, now: t0.addingTimeInterval(200))
        guard case .refused = await ledger.admitFree(anonymous, now: t0.addingTimeInterval(210)) else { Issue.record("HEAD 429 did not block"); return }
        #expect(await ledger.admitFree(anonymous, now: t0.addingTimeInterval(231)) == .granted(nil), "block outlived Retry-After")
    }

    static func blocksOnlyExtend(_ f: LedgerFixture) async throws {
        let ledger = try await f.ledger(pulls: nil)
        await ledger.observe(anonymous, answer: BudgetAnswer(status: 429, retryAfter: t0.addingTimeInterval(300)), manifestGET: false, now: t0)
        // A later 429 with a shorter Retry-After cannot shorten the block.
        await ledger.observe(anonymous, answer: BudgetAnswer(status: 429, retryAfter: t0.addingTimeInterval(20)), manifestGET: false, now: t0.addingTimeInterval(10))
        #expect(await ledger.admitFree(anonymous, now: t0.addingTimeInterval(100)) == .refused(until: t0.addingTimeInterval(300)))
    }

    static func spendsAndLearnedLimitsSurviveARestart(_ f: LedgerFixture) async throws {
        let now = Date()
        do {
            let ledger = try await f.ledger(pulls: 3)
            try await spend(ledger, anonymous, at: now.addingTimeInterval(-30))
            try await spend(ledger, anonymous, at: now.addingTimeInterval(-20), answer: BudgetAnswer(status: 200, limit: 10, remaining: 8, window: 3600))
        }
        let restarted = try await f.ledger(pulls: 3)
        try await f.load(restarted, now)
        let status = try #require(await restarted.status(anonymous, now: now))
        #expect(status.spentInWindow == 2)
        #expect(status.remaining == 1)
        #expect(status.limit == 3)
    }

    /// A block stored years ahead (an older version persisted any date an upstream sent) is
    /// clamped when loaded instead of trapping later.
    static func aFarFutureBlockIsClampedOnLoad(_ f: LedgerFixture) async throws {
        let now = Date()
        try await f.saveBudget(BudgetRecord(
            key: anonymous.value, learnedWindow: 9.2e18, getBlockedUntil: Date(timeIntervalSince1970: 1.8e14), allBlockedUntil: .distantFuture))
        let ledger = try await f.ledger()
        try await f.load(ledger, now)
        let status = try #require(await ledger.status(anonymous, now: now))
        let blocked = try #require(status.blockedUntil)
        #expect(blocked <= now.addingTimeInterval(BudgetRecord.maxHorizon))
        guard case .refused(let until?) = await ledger.admitFree(anonymous, now: now) else { Issue.record("block lost"); return }
        #expect(until <= now.addingTimeInterval(BudgetRecord.maxHorizon))
    }
}
