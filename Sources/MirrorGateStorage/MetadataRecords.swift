import Foundation
import RegistryModel

/// What the gateway last learned about a tag.
public struct TagRecord: Sendable, Equatable {
    public var registry: String
    public var repository: String
    public var tag: String
    public var digest: Digest
    public var mediaType: String
    /// When an upstream last confirmed this answer.
    public var checkedAt: Date
    /// Name of the upstream that answered.
    public var upstream: String

    public init(registry: String, repository: String, tag: String, digest: Digest, mediaType: String, checkedAt: Date, upstream: String) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
        self.mediaType = mediaType
        self.checkedAt = checkedAt
        self.upstream = upstream
    }
}

/// A cached object: a blob or a manifest (manifests have a media type).
public struct ObjectRecord: Sendable, Equatable {
    public var digest: Digest
    public var size: UInt64
    /// The manifest media type; `nil` for layers and configs.
    public var mediaType: String?
    public var createdAt: Date
    public var lastAccess: Date

    public init(digest: Digest, size: UInt64, mediaType: String?, createdAt: Date, lastAccess: Date) {
        self.digest = digest
        self.size = size
        self.mediaType = mediaType
        self.createdAt = createdAt
        self.lastAccess = lastAccess
    }
}

/// What the gateway learned about one upstream credential's pull budget.
public struct BudgetRecord: Sendable, Equatable {
    /// The budget's key: upstream origin and credential (never the secret).
    public var key: String
    public var learnedLimit: Int?
    public var learnedRemaining: Int?
    /// Window the upstream announced (`w=`), in seconds.
    public var learnedWindow: Double?
    public var learnedAt: Date?
    /// No manifest GET before this (after a 429 or an announced zero).
    public var getBlockedUntil: Date?
    /// No request at all before this (a 429 on HEAD or a blob).
    public var allBlockedUntil: Date?
    public var lastError: String?

    public init(key: String, learnedLimit: Int? = nil, learnedRemaining: Int? = nil, learnedWindow: Double? = nil, learnedAt: Date? = nil, getBlockedUntil: Date? = nil, allBlockedUntil: Date? = nil, lastError: String? = nil) {
        self.key = key
        self.learnedLimit = learnedLimit
        self.learnedRemaining = learnedRemaining
        self.learnedWindow = learnedWindow
        self.learnedAt = learnedAt
        self.getBlockedUntil = getBlockedUntil
        self.allBlockedUntil = allBlockedUntil
        self.lastError = lastError
    }
}

extension BudgetRecord {
    /// The furthest ahead an upstream can push a block, and the longest window it can
    /// announce: one day (`RetryAfter.maximum` and `RateLimitHeaders.maxWindow` in
    /// MirrorGateUpstream, which bound them as they are parsed).
    public static let maxHorizon: TimeInterval = 86_400
    /// The largest limit or remaining count (`RateLimitHeaders.maxCount`).
    public static let maxCount = 1_000_000_000

    /// This record with every value moved into the range a current gateway could have
    /// written: counts in `0...maxCount`, a window in `(0, maxHorizon]`, `learnedAt` not in
    /// the future, blocks ending at most `maxHorizon` after `now`. A row an older version
    /// wrote after `Retry-After: 9223372036854775807` (a block ending in the year 292 billion)
    /// otherwise crashed every start on its first request.
    public func clamped(now: Date) -> BudgetRecord {
        func count(_ n: Int?) -> Int? { n.map { min(max($0, 0), Self.maxCount) } }
        func notAfter(_ date: Date?, _ limit: Date) -> Date? {
            guard let date, date.timeIntervalSince1970.isFinite else { return nil }
            return min(date, limit)
        }
        var record = self
        record.learnedLimit = count(learnedLimit)
        record.learnedRemaining = count(learnedRemaining)
        record.learnedWindow = learnedWindow.flatMap { $0.isFinite && $0 > 0 ? min($0, Self.maxHorizon) : nil }
        record.learnedAt = notAfter(learnedAt, now)
        record.getBlockedUntil = notAfter(getBlockedUntil, now.addingTimeInterval(Self.maxHorizon))
        record.allBlockedUntil = notAfter(allBlockedUntil, now.addingTimeInterval(Self.maxHorizon))
        return record
    }
}
