import NIOCore
import RegistryModel

/// Content-addressed blob storage. Manifests are stored here too, under their digest.
///
/// The store owns all byte I/O: callers get a reader for a range, optionally a URL to
/// redirect clients to, and commit a local ``Spool`` into the store. Implementations keep
/// only complete, verified content under a digest: nothing is visible before
/// ``commit(_:verifiedAs:)``, which publishes a spool only when its hash equals its digest.
public protocol BlobStore: Sendable {
    /// The stored blob's size, or nil when it is not stored.
    func size(of digest: Digest) async throws(StorageError) -> UInt64?
    /// A reader for `range` of the stored blob (nil: all of it); nil when it is not stored.
    func reader(for digest: Digest, range: ClosedRange<UInt64>?) async throws(StorageError) -> (any BlobReader)?
    /// A URL clients may fetch the stored blob from themselves (a presigned object store
    /// URL), or nil when the gateway serves the bytes.
    func redirect(for digest: Digest) async throws(StorageError) -> String?
    /// Reads a whole (small) blob, such as a manifest. nil when absent.
    func read(_ digest: Digest, limit: Int) async throws(StorageError) -> ByteBuffer?
    /// A new spool on local disk for content of `digest` being fetched.
    func makeSpool(for digest: Digest) async throws(StorageError) -> Spool
    /// Publishes a fully written spool as `digest`: flushes it, and throws
    /// ``StorageError/Code/digestMismatch`` (discarding it) unless `actual` equals its digest.
    func commit(_ spool: Spool, verifiedAs actual: Digest) async throws(StorageError)
    /// Removes a blob (eviction, repair).
    func remove(_ digest: Digest) async throws(StorageError)
    /// Bytes that can still be written to the spool area, if the store can tell.
    func availableSpace() async -> UInt64?
    /// Whether content can be written now (probed after a full or read-only store).
    func probeWritable() async -> Bool
    /// Every stored blob with its size (start-up reconciliation).
    func allBlobs() async throws(StorageError) -> [Digest: UInt64]
    /// Every stored blob with its size, one page at a time, for a store too large to list in
    /// one go (a bucket's listing is paged: 1,000 keys per request). Returns when `body` has
    /// seen the last page; an error from the listing or from `body` ends it.
    func forEachBlobPage(_ body: ([Digest: UInt64]) async throws -> Void) async throws
    /// Re-hashes a stored blob; true when it matches its digest.
    func verify(_ digest: Digest) async throws(StorageError) -> Bool
}

extension BlobStore {
    /// One page: the whole of ``allBlobs()`` (a local directory lists quickly).
    public func forEachBlobPage(_ body: ([Digest: UInt64]) async throws -> Void) async throws {
        try await body(try await allBlobs())
    }

    /// Stores small content (a manifest) already in memory and verified by the caller.
    public func store(_ bytes: ByteBuffer, as digest: Digest, verifiedAs actual: Digest) async throws(StorageError) {
        let spool = try await makeSpool(for: digest)
        do {
            try await spool.write(bytes)
        } catch {
            await spool.discard()
            throw error
        }
        try await commit(spool, verifiedAs: actual)
    }
}
