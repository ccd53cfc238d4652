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
