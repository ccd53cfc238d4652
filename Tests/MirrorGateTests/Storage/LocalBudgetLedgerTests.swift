import Foundation
import Logging
import MirrorGateStorage
import Testing

/// The local ledger with its real SQLite journal, through ``BudgetLedgerChecklist``.
@Suite("LocalBudgetLedger")
struct LocalBudgetLedgerTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    typealias Check = BudgetLedgerChecklist

    /// A fixture whose ledgers share one SQLite file in a fresh directory.
    func withFixture(_ body: (LedgerFixture) async throws -> Void) async throws {
        let dir = try TemporaryDirectory("ledger")
        defer { dir.cleanUp() }
        let path = dir.path + "/m.sqlite"
        let fixture = LedgerFixture(
            make: { pulls, window in
                LocalBudgetLedger(
                    limits: [Check.anonymous: pulls.map { BudgetLimit(pulls: $0, window: window) }, Check.account: nil],
                    journal: try SQLiteMetadataStore(path: path), logger: Self.logger)
            },
            load: { ledger, now in await (ledger as! LocalBudgetLedger).load(now: now) },
            saveBudget: { record in try await SQLiteMetadataStore(path: path).saveBudget(record) })
        try await body(fixture)
    }

    @Test func configuredBudgetIsSpentThenResetsAfterTheWindow() async throws {
        try await withFixture(Check.configuredBudgetIsSpentThenResetsAfterTheWindow)
    }

    @Test func aHoldCountsUntilReleasedOrSettledWithoutSuccess() async throws {
        try await withFixture(Check.aHoldCountsUntilReleasedOrSettledWithoutSuccess)
    }

    @Test func announcedRemainingIsUsedWhenSmaller() async throws {
        try await withFixture(Check.announcedRemainingIsUsedWhenSmaller)
    }

    @Test func a429BlocksGETsUntilRetryAfterAndOnFreeRequestsBlocksEverything() async throws {
        try await withFixture(Check.a429BlocksGETsUntilRetryAfterAndOnFreeRequestsBlocksEverything)
    }

    @Test func blocksOnlyExtend() async throws {
        try await withFixture(Check.blocksOnlyExtend)
    }

    @Test func spendsAndLearnedLimitsSurviveARestart() async throws {
        try await withFixture(Check.spendsAndLearnedLimitsSurviveARestart)
    }

    @Test func aFarFutureBlockIsClampedOnLoad() async throws {
        try await withFixture(Check.aFarFutureBlockIsClampedOnLoad)
    }
}
