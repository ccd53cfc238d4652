import Foundation
import Logging
import Synchronization

/// The ``BudgetLedger`` of a single gateway: decisions in memory under one lock, every spend
/// and every learned limit written through a ``BudgetJournal`` (SQLite) before the manifest is
/// used, so a crash-looping gateway never spends twice and budgets survive restarts.
public final class LocalBudgetLedger: BudgetLedger {
    struct Budget {
        var limit: BudgetLimit?
        var record: BudgetRecord
        /// Successful manifest GETs, oldest first.
        var spends: [Date] = []
        /// Holds granted and not yet settled.
        var pending = 0

        var inputs: BudgetPolicy.Inputs { .init(limit: limit, spends: spends, pending: pending, record: record) }
    }

    private let state: Mutex<(budgets: [BudgetKey: Budget], nextHold: Int64)>
    private let journal: any BudgetJournal
    private let logger: Logger

    /// - Parameter limits: every budget the gateway knows, with its configured limit (nil:
    ///   only what the upstream announces applies).
    public init(limits: [BudgetKey: BudgetLimit?], journal: any BudgetJournal, logger: Logger) {
        var budgets: [BudgetKey: Budget] = [:]
        for (key, limit) in limits { budgets[key] = Budget(limit: limit, record: BudgetRecord(key: key.value)) }
        state = Mutex((budgets, 1))
        self.journal = journal
        self.logger = logger
    }

    /// Loads learned limits and recent spends from the journal.
    public func load(now: Date = Date()) async {
        do {
            let records = try await journal.budgets()
            let longest = state.withLock { $0.budgets.values.compactMap(\.limit?.window).max() } ?? 0
            let horizon = max(longest, records.compactMap(\.learnedWindow).max() ?? 0, 86_400)
            let spends = try await journal.spends(since: now.addingTimeInterval(-horizon))
            state.withLock { s in
                for record in records {
                    let key = BudgetKey(record.key)
                    guard s.budgets[key] != nil else { continue }
                    s.budgets[key]!.record = record.clamped(now: now)
                }
                for spend in spends {
                    s.budgets[BudgetKey(spend.budget)]?.spends.append(spend.at)
                }
            }
            try? await journal.pruneSpends(before: now.addingTimeInterval(-horizon))
        } catch {
            logger.error("could not load pull budgets; starting from the configured values", metadata: ["error": "\(error)"])
        }
    }

    public func reserve(_ key: BudgetKey, now: Date) async -> BudgetDecision {
        state.withLock { s in
            guard var budget = s.budgets[key] else { return .granted(nil) }
            if let until = budget.record.allBlockedUntil, until > now { return .refused(until: until) }
            let (remaining, reset) = BudgetPolicy.evaluate(budget.inputs, now: now)
            if let remaining, remaining <= 0 { return .refused(until: reset) }
            budget.pending += 1
            s.budgets[key] = budget
            defer { s.nextHold += 1 }
            return .granted(BudgetHold(key: key, id: s.nextHold, at: now))
        }
    }

    public func admitFree(_ key: BudgetKey, now: Date) async -> BudgetDecision {
        let until = state.withLock { $0.budgets[key]?.record.allBlockedUntil }
        if let until, until > now { return .refused(until: until) }
        return .granted(nil)
    }

    public func release(_ hold: BudgetHold) async {
        state.withLock { s in
            if let pending = s.budgets[hold.key]?.pending, pending > 0 { s.budgets[hold.key]!.pending = pending - 1 }
        }
    }

    public func settle(_ hold: BudgetHold, answer: BudgetAnswer?, now: Date) async {
        let spent = answer.map { (200..<300).contains($0.status) } ?? false
        state.withLock { s in
            guard s.budgets[hold.key] != nil else { return }
            s.budgets[hold.key]!.pending = max(0, s.budgets[hold.key]!.pending - 1)
            if spent { s.budgets[hold.key]!.spends.append(now) }
        }
        if spent {
            do {
                try await journal.recordSpend(budget: hold.key.value, at: now)
            } catch {
                logger.error("could not persist a pull spend", metadata: ["budget": "\(hold.key)", "error": "\(error)"])
            }
        }
        // What the answer announces already counts this spend: learn it just after it.
        if let answer { await observe(hold.key, answer: answer, manifestGET: true, now: now.addingTimeInterval(0.001)) }
    }

    public func observe(_ key: BudgetKey, answer: BudgetAnswer, manifestGET: Bool, now: Date) async {
        guard answer.isInformative else { return }
        let record: BudgetRecord? = state.withLock { s in
            guard var budget = s.budgets[key] else { return nil }
            budget.record = BudgetPolicy.learn(answer, into: budget.record, limit: budget.limit, spends: budget.spends, manifestGET: manifestGET, now: now)
            s.budgets[key] = budget
            return budget.record
        }
        guard let record else { return }
        if answer.status == 429 {
            logger.warning("upstream rate limit reached", metadata: [
                "budget": "\(key)", "get_blocked_until": "\(record.getBlockedUntil.map { "\($0)" } ?? "-")",
                "all_blocked_until": "\(record.allBlockedUntil.map { "\($0)" } ?? "-")",
            ])
        }
        try? await journal.saveBudget(record)
    }

    public func status(_ key: BudgetKey, now: Date) async -> BudgetStatus? {
        state.withLock { s in s.budgets[key].map { BudgetPolicy.status($0.inputs, now: now) } }
    }
}
