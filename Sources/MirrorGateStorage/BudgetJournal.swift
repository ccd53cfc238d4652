import Foundation

/// Where ``LocalBudgetLedger`` writes its spends and what it learned, so budgets survive
/// restarts. The ledger decides in memory; the journal is read back only at start-up.
public protocol BudgetJournal: Sendable {
    /// Records one spent pull (a manifest GET) on a budget, durably, before it is used.
    func recordSpend(budget: String, at: Date) async throws
    /// Spends at or after `since`, oldest first.
    func spends(since: Date) async throws -> [(budget: String, at: Date)]
    /// Drops spends older than `before`.
    func pruneSpends(before: Date) async throws
    /// Stores what was learned about a budget, replacing the earlier record of that key.
    func saveBudget(_ record: BudgetRecord) async throws
    /// Every stored budget record.
    func budgets() async throws -> [BudgetRecord]
}
