import Foundation

/// Which budget a request spends from: an upstream's origin and base path plus its credential
/// (`https://registry-1.docker.io|anonymous`). Upstreams that share both share one budget, as
/// Docker Hub counts pulls per account or source address, not per gateway setting.
public struct BudgetKey: Hashable, Sendable, CustomStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { value }
}

/// A configured budget: at most `pulls` manifest GETs in any `window` seconds.
public struct BudgetLimit: Sendable, Equatable {
    public var pulls: Int
    public var window: TimeInterval
    public init(pulls: Int, window: TimeInterval) {
        self.pulls = pulls
        self.window = window
    }
}

/// A spend reserved before a manifest GET goes out. It counts as spent until it is released
/// (nothing was sent, or the answer was not a success) or settled.
public struct BudgetHold: Sendable, Equatable {
    public let key: BudgetKey
    /// Identifies the reservation in the ledger (a row id in a shared ledger).
    public let id: Int64
    public let at: Date
    public init(key: BudgetKey, id: Int64, at: Date) {
        self.key = key
        self.id = id
        self.at = at
    }
}

/// A ledger's answer to "may this request go out?".
public enum BudgetDecision: Sendable, Equatable {
    /// Go; a spend carries its hold (nil for free requests).
    case granted(BudgetHold?)
    /// Not now: no budget until the date (nil when the ledger cannot tell).
    case refused(until: Date?)
}

/// What an upstream's answer says about its budget: the status, its `ratelimit-*` headers and
/// `Retry-After`, already parsed and clamped (nothing from the network reaches the ledger raw).
public struct BudgetAnswer: Sendable, Equatable {
    public var status: Int
    public var limit: Int?
    public var remaining: Int?
    /// The window the upstream announced (`w=`), in seconds.
    public var window: TimeInterval?
    public var retryAfter: Date?

    public init(status: Int, limit: Int? = nil, remaining: Int? = nil, window: TimeInterval? = nil, retryAfter: Date? = nil) {
        self.status = status
        self.limit = limit
        self.remaining = remaining
        self.window = window
        self.retryAfter = retryAfter
    }

    /// Whether the answer teaches the ledger anything.
    public var isInformative: Bool { limit != nil || remaining != nil || status == 429 }
}

/// A budget's state for status output (`/_mirrorgate/upstreams`, the status page, metrics).
public struct BudgetStatus: Sendable, Codable, Equatable {
    public var limit: Int?
    public var remaining: Int?
    public var resetAt: Date?
    public var spentInWindow: Int
    public var windowSeconds: Double?
    public var blockedUntil: Date?
    public var lastError: String?

    public init(limit: Int?, remaining: Int?, resetAt: Date?, spentInWindow: Int, windowSeconds: Double?, blockedUntil: Date?, lastError: String?) {
        self.limit = limit
        self.remaining = remaining
        self.resetAt = resetAt
        self.spentInWindow = spentInWindow
        self.windowSeconds = windowSeconds
        self.blockedUntil = blockedUntil
        self.lastError = lastError
    }
}

/// The pull budgets of every upstream credential. A spend is a successful manifest GET; HEAD
/// and blob requests are free (Docker Hub's rules), except while a 429 on a free request blocks
/// everything.
///
/// The upstream walk is the only caller. Its contract:
/// - ``reserve(_:now:)`` before every manifest GET; a granted hold counts as spent at once, so
///   concurrent reservations can never together exceed the budget;
/// - then exactly one of ``release(_:)`` (nothing was sent) or ``settle(_:answer:now:)``
///   (an answer arrived, or the request failed after it may have reached the upstream: `nil`);
/// - ``observe(_:answer:manifestGET:now:)`` for every other answer that carries budget headers
///   or is a 429.
///
/// Merge rules every implementation keeps:
/// - the configured limit and the upstream's announced `ratelimit-remaining` both apply,
///   whichever leaves less; spends after the announcement are subtracted from it;
/// - a newer announcement replaces an older one (by time learned), never the reverse;
/// - blocks (`Retry-After`, 429s) only ever extend: the later of two block dates wins, except
///   that a newer announcement of remaining budget lifts a block on GETs;
/// - a hold that is never settled (the process died) counts as spent for its whole window, so
///   a crash can only under-spend.
public protocol BudgetLedger: Sendable {
    /// Reserves one spend on `key`.
    func reserve(_ key: BudgetKey, now: Date) async -> BudgetDecision
    /// Whether a free request may go to an upstream with `key` now (a hold is never returned).
    func admitFree(_ key: BudgetKey, now: Date) async -> BudgetDecision
    /// Gives back a hold whose request was never sent.
    func release(_ hold: BudgetHold) async
    /// Accounts for the answer to a held request: a 2xx stays spent, anything else is given
    /// back. `answer` nil: the request failed without an answer; it is given back.
    func settle(_ hold: BudgetHold, answer: BudgetAnswer?, now: Date) async
    /// Learns from an answer to a request that held nothing (HEAD, blob, listings).
    func observe(_ key: BudgetKey, answer: BudgetAnswer, manifestGET: Bool, now: Date) async
    /// The budget's state now; nil for a key the ledger does not know.
    func status(_ key: BudgetKey, now: Date) async -> BudgetStatus?
}
