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

/// Metadata about cached content and tags. A later step adds a PostgreSQL implementation
/// shared by several replicas; the local default is SQLite.
public protocol MetadataStore: Sendable {
    func tag(registry: String, repository: String, tag: String) async throws -> TagRecord?
    func saveTag(_ record: TagRecord) async throws
    func object(_ digest: Digest) async throws -> ObjectRecord?
    func saveObject(_ record: ObjectRecord) async throws
    func removeObject(_ digest: Digest) async throws
}
