import Foundation
import Logging
import MirrorGateConfig
import MirrorGateStorage
import MirrorGateUpstream
import NIOHTTP1
import Synchronization

/// Pull budgets per upstream credential: the configured `budget: {pulls, window}` and what the
/// upstream announces in `ratelimit-*` headers, whichever leaves less.
///
/// A spend is a successful manifest GET; HEAD and blob requests are free (Docker Hub's rules).
/// Spends are written to the metadata store before the manifest is used, so a crash-looping
/// gateway never spends twice, and budgets survive restarts.
public final class QuotaBook: Sendable {
    /// One budget (shared by upstreams with the same origin and credential).
    struct Budget {
        var configuredPulls: Int?
        var configuredWindow: TimeInterval?
        var record: BudgetRecord
        /// Successful manifest GETs, oldest first (pruned to the longest window).
        var spends: [Date] = []
        /// GETs admitted and not yet answered.
        var pending = 0
    }

    /// A budget's state for status output.
    public struct Status: Sendable, Codable, Equatable {
        public var limit: Int?
        public var remaining: Int?
        public var resetAt: Date?
        public var spentInWindow: Int
        public var windowSeconds: Double?
        public var blockedUntil: Date?
        public var lastError: String?
    }

    private let state: Mutex<[String: Budget]>
    private let keys: [String: String]
    private let store: any MetadataStore
    private let logger: Logger

    public init(config: GatewayConfig, store: any MetadataStore, logger: Logger) {
        var budgets: [String: Budget] = [:]
        var keys: [String: String] = [:]
        for registry in config.registries {
            for upstream in registry.upstreams {
                let key = Self.budgetKey(upstream)
                keys[registry.key + "\u{0}" + upstream.name] = key
                var budget = budgets[key] ?? Budget(record: BudgetRecord(key: key))
                if let b = upstream.budget, budget.configuredPulls == nil {
                    budget.configuredPulls = b.pulls
                    budget.configuredWindow = b.window.seconds
                }
                budgets[key] = budget
            }
        }
        self.state = Mutex(budgets)
        self.keys = keys
        self.store = store
        self.logger = logger
    }

    /// Upstreams with the same origin and user share a budget (Hub counts per account or IP).
    public static func budgetKey(_ upstream: UpstreamConfig) -> String {
        "\(upstream.url.origin)\(upstream.url.basePath)|\(upstream.username ?? "anonymous")"
    }

    func key(_ upstream: Upstream) -> String? { keys[upstream.registry + "\u{0}" + upstream.name] }

    /// Loads learned limits and recent spends from the metadata store.
    public func load() async {
        do {
            let records = try await store.budgets()
            let longest = state.withLock { $0.values.compactMap(\.configuredWindow).max() } ?? 0
            let horizon = max(longest, records.compactMap(\.learnedWindow).max() ?? 0, 86_400)
            let spends = try await store.spends(since: Date().addingTimeInterval(-horizon))
            state.withLock { budgets in
                for record in records where budgets[record.key] != nil {
                    budgets[record.key]!.record = record
                }
                for spend in spends where budgets[spend.budget] != nil {
                    budgets[spend.budget]!.spends.append(spend.at)
                }
            }
            try? await store.pruneSpends(before: Date().addingTimeInterval(-horizon))
        } catch {
            logger.error("could not load pull budgets; starting from the configured values", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Admission

    /// Admits a manifest GET (a spend) or returns when budget frees up (`nil`: unknown).
    func reserveManifestGET(_ upstream: Upstream, now: Date = Date()) -> Result<Void, UpstreamError> {
        guard let key = key(upstream) else { return .success(()) }
        return state.withLock { budgets in
            guard var budget = budgets[key] else { return .success(()) }
            if let until = budget.record.allBlockedUntil, until > now { return .failure(.rateLimited(until: until)) }
            let (remaining, reset) = Self.evaluate(budget, now: now)
            if let remaining, remaining <= 0 { return .failure(.rateLimited(until: reset)) }
            budget.pending += 1
            budgets[key] = budget
            return .success(())
        }
    }

    /// Whether a free request (HEAD, blob) may go out now.
    func admitFree(_ upstream: Upstream, now: Date = Date()) -> Result<Void, UpstreamError> {
        guard let key = key(upstream) else { return .success(()) }
        let until = state.withLock { $0[key]?.record.allBlockedUntil }
        if let until, until > now { return .failure(.rateLimited(until: until)) }
        return .success(())
    }

    /// Accounts for the answer to an admitted manifest GET (`status` nil: no answer).
    func finishManifestGET(_ upstream: Upstream, status: Int?, headers: HTTPHeaders?, now: Date = Date()) async {
        guard let key = key(upstream) else { return }
        let spent = status.map { (200..<300).contains($0) } ?? false
        state.withLock { budgets in
            budgets[key]?.pending -= 1
            if spent { budgets[key]?.spends.append(now) }
        }
        if spent {
            do {
                try await store.recordSpend(budget: key, at: now)
            } catch {
                logger.error("could not persist a pull spend", metadata: ["budget": "\(upstream.name)", "error": "\(error)"])
            }
        }
        if let status, let headers {
            await observe(upstream, status: status, headers: headers, manifestGET: true, now: now.addingTimeInterval(0.001))
        }
    }

    /// Learns from any upstream answer: rate-limit headers, and 429s.
    func observe(_ upstream: Upstream, status: Int, headers: HTTPHeaders, manifestGET: Bool, now: Date = Date()) async {
        guard let key = key(upstream) else { return }
        let announced = RateLimitHeaders(headers: headers)
        guard announced != nil || status == 429 else { return }
        let retryAfter = headers.first(name: "retry-after").flatMap { RetryAfter.parse($0, now: now) }
        let record: BudgetRecord? = state.withLock { budgets in
            guard var budget = budgets[key] else { return nil }
            if let announced {
                budget.record.learnedLimit = announced.limit ?? budget.record.learnedLimit
                if let remaining = announced.remaining {
                    budget.record.learnedRemaining = remaining
                    budget.record.learnedAt = now
                    // A newer announcement of budget lifts an earlier block on GETs.
                    if remaining > 0, status != 429 { budget.record.getBlockedUntil = nil }
                }
                if let window = announced.window { budget.record.learnedWindow = window.seconds }
            }
            if status == 429 {
                let window = budget.record.learnedWindow ?? budget.configuredWindow ?? 3600
                let oldest = budget.spends.first { $0 > now.addingTimeInterval(-window) }
                let windowEnd = oldest.map { $0.addingTimeInterval(window) } ?? now.addingTimeInterval(window)
                if manifestGET {
                    budget.record.getBlockedUntil = retryAfter ?? windowEnd
                } else {
                    // A 429 on HEAD or a blob: Hub's abuse limit, or an exhausted HEAD. Stop everything.
                    budget.record.allBlockedUntil = retryAfter ?? now.addingTimeInterval(min(window, 60))
                }
                budget.record.lastError = "429 \(manifestGET ? "on a manifest GET" : "on a free request")"
            }
            budgets[key] = budget
            return budget.record
        }
        if let record {
            if status == 429 {
                logger.warning("upstream rate limit reached", metadata: [
                    "upstream": "\(upstream.name)", "get_blocked_until": "\(record.getBlockedUntil.map { "\($0)" } ?? "-")",
                    "all_blocked_until": "\(record.allBlockedUntil.map { "\($0)" } ?? "-")",
                ])
            }
            try? await store.saveBudget(record)
        }
    }

    /// The budget of `upstream` now.
    public func status(_ upstream: Upstream, now: Date = Date()) -> Status? {
        guard let key = key(upstream) else { return nil }
        return state.withLock { budgets -> Status? in
            guard let budget = budgets[key] else { return nil }
            let (remaining, reset) = Self.evaluate(budget, now: now)
            let window = budget.configuredWindow ?? budget.record.learnedWindow
            let spent = window.map { w in budget.spends.filter { $0 > now.addingTimeInterval(-w) }.count } ?? budget.spends.count
            let limit = [budget.configuredPulls, budget.record.learnedLimit].compactMap { $0 }.min()
            let blocked = [budget.record.getBlockedUntil, budget.record.allBlockedUntil].compactMap { $0 }.filter { $0 > now }.max()
            return Status(limit: limit, remaining: remaining.map { max($0, 0) }, resetAt: reset, spentInWindow: spent, windowSeconds: window, blockedUntil: blocked, lastError: budget.record.lastError)
        }
    }

    /// Remaining pulls (nil: unlimited) and, when none remain, when the next one frees up.
    static func evaluate(_ budget: Budget, now: Date) -> (remaining: Int?, resetAt: Date?) {
        var remaining: Int?
        var reset: Date?
        if let pulls = budget.configuredPulls, let window = budget.configuredWindow {
            let inWindow = budget.spends.filter { $0 > now.addingTimeInterval(-window) }
            remaining = pulls - inWindow.count - budget.pending
            if remaining! <= 0 { reset = inWindow.first.map { $0.addingTimeInterval(window) } }
        }
        if let learned = budget.record.learnedRemaining, let at = budget.record.learnedAt {
            let window = budget.record.learnedWindow ?? budget.configuredWindow ?? 21_600
            if now < at.addingTimeInterval(window) {
                let left = learned - budget.spends.filter { $0 > at }.count - budget.pending
                if remaining == nil || left < remaining! {
                    remaining = left
                    if left <= 0 { reset = at.addingTimeInterval(window) }
                }
            }
        }
        if let until = budget.record.getBlockedUntil, until > now {
            remaining = 0
            reset = until
        }
        return (remaining, reset)
    }
}
