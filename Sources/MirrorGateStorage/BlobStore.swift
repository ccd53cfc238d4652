import NIOCore
import RegistryModel

/// Where a stored blob can be read from.
public enum BlobLocation: Sendable, Equatable {
    /// A local file of `size` bytes.
    case file(path: String, size: UInt64)
}

/// Content-addressed blob storage. Manifests are stored here too, under their digest.
///
/// Implementations keep only complete, verified content under a digest: writes go to an
/// ``BlobIngest`` that becomes visible only through ``BlobIngest/commit()``.
public protocol BlobStore: Sendable {
    /// The stored blob, or `nil` when it is not in the cache.
    func locate(_ digest: Digest) async throws -> BlobLocation?
    /// Reads a whole (small) blob, such as a manifest. `nil` when absent.
    func read(_ digest: Digest, limit: Int) async throws -> ByteBuffer?
    /// Starts writing the content of `digest`. Nothing is visible until `commit()`.
    func makeIngest(for digest: Digest) async throws -> any BlobIngest
    /// Removes a blob (eviction, repair).
    func remove(_ digest: Digest) async throws
    /// Bytes that can still be written, if the store can tell.
    func availableSpace() async -> UInt64?
}

/// A blob being written. The writer hashes the bytes as it streams them (it must decide about
/// the final chunk before publishing); ``commit(verifiedAs:)`` publishes the blob only when
/// that hash equals ``digest``, and discards it otherwise.
public protocol BlobIngest: Sendable {
    var digest: Digest { get }
    /// Appends bytes.
    func write(_ buffer: ByteBuffer) async throws
    /// Flushes to stable storage and publishes the blob. Throws ``StorageError/digestMismatch``
    /// (and discards) when the written bytes do not hash to ``digest``.
    func commit(verifiedAs actual: Digest) async throws
    /// Drops the partial content.
    func discard() async
}

/// A blob ingest backed by a local temporary file that readers can open while it grows, so
/// clients can follow an in-flight fetch.
public protocol LocalBlobIngest: BlobIngest {
    var temporaryPath: String { get }
}
