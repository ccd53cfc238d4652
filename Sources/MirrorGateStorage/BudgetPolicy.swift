import Foundation

/// The pure arithmetic of a budget: what remains now and when the next pull frees up. Shared
/// by every ``BudgetLedger`` implementation, so a local and a shared ledger decide alike.
public enum BudgetPolicy {
    /// Everything the policy looks at.
    public struct Inputs: Sendable, Equatable {
        public var limit: BudgetLimit?
        /// Spends in the longest window that matters, oldest first (held ones included).
        public var spends: [Date]
        /// Reservations not yet counted in `spends`.
        public var pending: Int
        public var record: BudgetRecord

        public init(limit: BudgetLimit?, spends: [Date], pending: Int, record: BudgetRecord) {
            self.limit = limit
            self.spends = spends
            self.pending = pending
            self.record = record
        }
    }

    /// The default window when nothing announced or configured one (Docker Hub's 6 hours).
    public static let defaultWindow: TimeInterval = 21_600

    /// Remaining pulls (nil: unlimited) and, when none remain, when the next one frees up.
    public static func evaluate(_ inputs: Inputs, now: Date) -> (remaining: Int?, resetAt: Date?) {
        var remaining: Int?
        var reset: Date?
        if let limit = inputs.limit {
            let inWindow = inputs.spends.filter { $0 > now.addingTimeInterval(-limit.window) }
            let left = limit.pulls - inWindow.count - inputs.pending
            remaining = left
            if left <= 0 { reset = inWindow.first.map { $0.addingTimeInterval(limit.window) } }
        }
        if let learned = inputs.record.learnedRemaining, let at = inputs.record.learnedAt {
            let window = inputs.record.learnedWindow ?? inputs.limit?.window ?? defaultWindow
            if now < at.addingTimeInterval(window) {
                let left = learned - inputs.spends.filter { $0 > at }.count - inputs.pending
                if remaining == nil || left < remaining! {
                    remaining = left
                    if left <= 0 { reset = at.addingTimeInterval(window) }
                }
            }
        }
        if let until = inputs.record.getBlockedUntil, until > now {
            remaining = 0
            reset = until
        }
        return (remaining, reset)
    }

    /// The record after learning from `answer` (`spends` orders a 429's block: it lasts until
    /// the oldest spend in the window leaves it, unless `Retry-After` says otherwise).
    public static func learn(_ answer: BudgetAnswer, into record: BudgetRecord, limit: BudgetLimit?, spends: [Date], manifestGET: Bool, now: Date) -> BudgetRecord {
        var record = record
        if answer.limit != nil || answer.remaining != nil {
            record.learnedLimit = answer.limit ?? record.learnedLimit
            if let remaining = answer.remaining {
                record.learnedRemaining = remaining
                record.learnedAt = now
                // A newer announcement of budget lifts an earlier block on GETs.
                if remaining > 0, answer.status != 429 { record.getBlockedUntil = nil }
            }
            if let window = answer.window { record.learnedWindow = window }
        }
        if answer.status == 429 {
            let window = record.learnedWindow ?? limit?.window ?? 3600
            let oldest = spends.first { $0 > now.addingTimeInterval(-window) }
            let windowEnd = oldest.map { $0.addingTimeInterval(window) } ?? now.addingTimeInterval(window)
            if manifestGET {
                record.getBlockedUntil = later(record.getBlockedUntil, answer.retryAfter ?? windowEnd)
            } else {
                // A 429 on HEAD or a blob: Hub's abuse limit, or an exhausted HEAD. Stop everything.
                record.allBlockedUntil = later(record.allBlockedUntil, answer.retryAfter ?? now.addingTimeInterval(min(window, 60)))
            }
            record.lastError = "429 \(manifestGET ? "on a manifest GET" : "on a free request")"
        }
        return record
    }

    static func later(_ a: Date?, _ b: Date) -> Date {
        guard let a, a > b else { return b }
        return a
    }

    /// The status shown to operators.
    public static func status(_ inputs: Inputs, now: Date) -> BudgetStatus {
        let (remaining, reset) = evaluate(inputs, now: now)
        let window = inputs.limit?.window ?? inputs.record.learnedWindow
        let spent = window.map { w in inputs.spends.filter { $0 > now.addingTimeInterval(-w) }.count } ?? inputs.spends.count
        let limit = [inputs.limit?.pulls, inputs.record.learnedLimit].compactMap { $0 }.min()
        let blocked = [inputs.record.getBlockedUntil, inputs.record.allBlockedUntil].compactMap { $0 }.filter { $0 > now }.max()
        return BudgetStatus(
            limit: limit, remaining: remaining.map { max($0, 0) }, resetAt: reset, spentInWindow: spent,
            windowSeconds: window, blockedUntil: blocked, lastError: inputs.record.lastError)
    }
}
