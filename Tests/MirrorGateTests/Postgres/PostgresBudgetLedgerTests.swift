import Foundation
import MirrorGatePostgres
import MirrorGateStorage
import Testing

extension PostgresTests {
    /// The local ledger's expectations (``BudgetLedgerChecklist``) against the shared ledger,
    /// and what only a shared ledger must survive: replicas racing for the last pulls, a
    /// replica that dies holding a reservation, and blocks learned by another replica.
    @Suite("PostgresBudgetLedger")
    struct BudgetLedger {
        typealias Check = BudgetLedgerChecklist

        static func limits(pulls: Int?, window: TimeInterval) -> [BudgetKey: BudgetLimit?] {
            [Check.anonymous: pulls.map { BudgetLimit(pulls: $0, window: window) }, Check.account: nil]
        }

        func withFixture(_ body: @escaping @Sendable (LedgerFixture) async throws -> Void) async throws {
            try await TestDatabase.with { database, _, _ in
                let fixture = LedgerFixture(
                    make: { pulls, window in
                        PostgresBudgetLedger(limits: Self.limits(pulls: pulls, window: window), database: database, replica: "test/\(UUID())", logger: TestDatabase.logger)
                    },
                    load: { ledger, now in try await (ledger as! PostgresBudgetLedger).refreshBlocks(now: now) },
                    saveBudget: { record in try await PostgresMetadataStore(database: database).saveBudget(record) })
                try await body(fixture)
            }
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

        /// replicas.md §6: N tasks on M replicas (each its own pool) race for a budget of B.
        /// Exactly B are granted and exactly B rows exist; the single-statement forms of §5.1
        /// admit more.
        @Test(arguments: [(tasks: 96, replicas: 4, budget: 10), (tasks: 40, replicas: 2, budget: 1)])
        func racingReplicasNeverOverspend(tasks: Int, replicas: Int, budget: Int) async throws {
            try await TestDatabase.with { database, server, name in
                var ledgers: [PostgresBudgetLedger] = []
                var databases: [PostgresDatabase] = []
                for i in 0..<replicas {
                    let db = try PostgresDatabase(configuration: server.configuration(database: name, poolSize: 4), logger: TestDatabase.logger)
                    databases.append(db)
                    ledgers.append(PostgresBudgetLedger(
                        limits: Self.limits(pulls: budget, window: 3600), database: db, replica: "replica-\(i)", logger: TestDatabase.logger))
                }
                let all = ledgers
                let granted = try await Self.running(databases) {
                    await withTaskGroup(of: Int.self) { group in
                        for i in 0..<tasks {
                            group.addTask {
                                let decision = await all[i % all.count].reserve(Check.anonymous, now: Check.t0.addingTimeInterval(Double(i) / 1000))
                                if case .granted(.some) = decision { return 1 }
                                return 0
                            }
                        }
                        return await group.reduce(0, +)
                    }
                }
                #expect(granted == budget)
                #expect(try await server.psql("SELECT count(*) FROM spends", database: name) == "\(budget)")
            }
        }

        /// A replica that reserved and died never settles: its reservation keeps counting for the
        /// window (so a crash can only under-spend), then frees up.
        @Test func aReservationNeverSettledCountsAsSpentForItsWindow() async throws {
            try await withFixture { f in
                let crashed = try await f.ledger(pulls: 2, window: 3600)
                guard case .granted(.some) = await crashed.reserve(Check.anonymous, now: Check.t0) else { Issue.record("refused"); return }
                // The process is gone; another replica sees one pull left, then none.
                let survivor = try await f.ledger(pulls: 2, window: 3600)
                #expect(await survivor.status(Check.anonymous, now: Check.t0.addingTimeInterval(60))?.remaining == 1)
                try await Check.spend(survivor, Check.anonymous, at: Check.t0.addingTimeInterval(60))
                guard case .refused = await survivor.reserve(Check.anonymous, now: Check.t0.addingTimeInterval(120)) else {
                    Issue.record("the dead replica's reservation was not counted")
                    return
                }
                guard case .granted(.some) = await survivor.reserve(Check.anonymous, now: Check.t0.addingTimeInterval(3601)) else {
                    Issue.record("the reservation counted past its window")
                    return
                }
            }
        }

        /// A 429 on a free request seen by one replica blocks free requests on another, which
        /// hears of it by notification (and reads it from its local copy, without a round trip).
        @Test func aBlockLearnedOnOneReplicaReachesAnother() async throws {
            try await TestDatabase.with(pollInterval: .seconds(60)) { database, server, name in
                let otherDatabase = try PostgresDatabase(configuration: server.configuration(database: name, pollInterval: .seconds(60)), logger: TestDatabase.logger)
                let now = Date()
                let a = PostgresBudgetLedger(limits: Self.limits(pulls: nil, window: 3600), database: database, replica: "a", logger: TestDatabase.logger)
                let b = PostgresBudgetLedger(limits: Self.limits(pulls: nil, window: 3600), database: otherDatabase, replica: "b", logger: TestDatabase.logger)
                try await Self.running([otherDatabase]) {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask { try await b.run() }
                        #expect(await b.admitFree(Check.anonymous, now: now) == .granted(nil))
                        await a.observe(Check.anonymous, answer: BudgetAnswer(status: 429, retryAfter: now.addingTimeInterval(120)), manifestGET: false, now: now)
                        let deadline = ContinuousClock.now + .seconds(20)
                        while await b.admitFree(Check.anonymous, now: now) == .granted(nil), ContinuousClock.now < deadline {
                            try await Task.sleep(for: .milliseconds(20))
                        }
                        guard case .refused(let until?) = await b.admitFree(Check.anonymous, now: now) else {
                            Issue.record("the other replica never learned of the block (its poll is 60 s: the notification did not arrive)")
                            group.cancelAll()
                            return
                        }
                        #expect(abs(until.timeIntervalSince(now.addingTimeInterval(120))) < 0.001)
                        group.cancelAll()
                    }
                }
            }
        }

        /// Replicas' answers reach the ledger out of order: the newest announcement wins, and an
        /// announcement of budget lifts only a GET block set before it.
        @Test func announcementsMergeNewestFirstAndBlocksOnlyByLaterNews() async throws {
            try await withFixture { f in
                let a = try await f.ledger(pulls: nil)
                let b = try await f.ledger(pulls: nil)
                let t = Check.t0
                await a.observe(Check.anonymous, answer: BudgetAnswer(status: 200, limit: 100, remaining: 50, window: 21_600), manifestGET: false, now: t.addingTimeInterval(60))
                // b's answer is older (it was sent before a's) but arrives later.
                await b.observe(Check.anonymous, answer: BudgetAnswer(status: 200, limit: 100, remaining: 90, window: 21_600), manifestGET: false, now: t.addingTimeInterval(30))
                #expect(await a.status(Check.anonymous, now: t.addingTimeInterval(61))?.remaining == 50)
                // A 429 on a GET at t+100 blocks GETs; news of budget from before it does not lift it.
                guard case .granted(let hold?) = await a.reserve(Check.anonymous, now: t.addingTimeInterval(100)) else { Issue.record("refused"); return }
                await a.settle(hold, answer: BudgetAnswer(status: 429, retryAfter: t.addingTimeInterval(400)), now: t.addingTimeInterval(100))
                await b.observe(Check.anonymous, answer: BudgetAnswer(status: 200, remaining: 40, window: 21_600), manifestGET: false, now: t.addingTimeInterval(90))
                guard case .refused = await b.reserve(Check.anonymous, now: t.addingTimeInterval(110)) else {
                    Issue.record("an announcement older than the 429 lifted its block")
                    return
                }
                // News from after the block lifts it.
                await b.observe(Check.anonymous, answer: BudgetAnswer(status: 200, remaining: 30, window: 21_600), manifestGET: false, now: t.addingTimeInterval(120))
                guard case .granted(.some) = await a.reserve(Check.anonymous, now: t.addingTimeInterval(121)) else {
                    Issue.record("a later announcement of budget did not lift the block")
                    return
                }
            }
        }

        /// Without the database a manifest GET is never admitted (fail closed); the throwing
        /// variant says why.
        @Test func noSpendWithoutTheDatabase() async throws {
            let server = try #require(PostgresServer.current)
            // Not running: its pool never connects.
            let database = try PostgresDatabase(configuration: server.configuration(database: "postgres", queryTimeout: .milliseconds(300)), logger: TestDatabase.logger)
            let ledger = PostgresBudgetLedger(limits: Self.limits(pulls: 5, window: 3600), database: database, replica: "x", logger: TestDatabase.logger)
            #expect(await ledger.reserve(Check.anonymous, now: Check.t0) == .refused(until: nil))
            await #expect(throws: StorageError.self) { try await ledger.reserveShared(Check.anonymous, now: Check.t0) }
            #expect(await ledger.admitFree(Check.anonymous, now: Check.t0) == .granted(nil))
            #expect(await ledger.status(Check.anonymous, now: Check.t0)?.lastError?.contains("unavailable") == true)
        }

        /// Runs several databases' pools around `body`.
        static func running<T: Sendable>(_ databases: [PostgresDatabase], _ body: @escaping @Sendable () async throws -> T) async throws -> T {
            guard let first = databases.first else { return try await body() }
            return try await TestDatabase.running(first) { try await running(Array(databases.dropFirst()), body) }
        }
    }
}
