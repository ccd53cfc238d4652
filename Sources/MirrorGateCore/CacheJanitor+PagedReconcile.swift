import Foundation
import MirrorGateStorage
import RegistryModel

/// Reconciliation of a store too large to list before serving: an S3 bucket lists 1,000 keys
/// per request, so a cache of a million blobs takes a thousand round trips, and ``reconcile()``
/// would hold the listing in memory and keep the gateway from serving meanwhile.
///
/// So in S3 mode the gateway serves at once and the janitor walks the bucket page by page in
/// the background (``CacheJanitor/init(blobs:metadata:maxSize:interval:reconcileInBackground:logger:)``);
/// `mirrorgate gc` runs the same pass in the foreground. Serving does not depend on it: a
/// blob's presence is asked of the store (a HEAD), and a row whose object is gone is a miss
/// there. What the pass repairs is the budget: objects without a row (a crash between upload
/// and row, or a metadata file lost with its volume) are invisible to `max_size` and eviction
/// until adopted, and rows without an object count against the cap.
extension CacheJanitor {
    /// The counts of one pass.
    public struct Reconciliation: Sendable, Equatable {
        /// Blobs listed in the store.
        public var listed = 0
        /// Objects without a row that hashed to their digest and got one.
        public var adopted = 0
        /// Objects removed: without a row and not hashing to their digest, or of another size than their row.
        public var removed = 0
        /// Rows whose object is not in the store.
        public var dropped = 0
    }

    /// Walks the store page by page and makes rows and objects agree, as ``reconcile()`` does
    /// for a file system, without holding the listing in memory.
    ///
    /// Blobs are committed and evicted while the pass runs, so nothing is judged from the
    /// listing alone: an object without a row is looked up again before it is adopted (its
    /// row may have been written since the pass began), and a row whose object was not listed
    /// is dropped only if a HEAD confirms the object is gone (it may have been evicted and
    /// fetched again after the listing passed its key). Adopting an object reads it whole to
    /// hash it: after losing the metadata file, the first pass reads the bucket once.
    @discardableResult
    public func reconcileInPages() async throws -> Reconciliation {
        var counts = Reconciliation()
        var unseen = try await metadata.allObjects()
        try await blobs.forEachBlobPage { page in
            for (digest, size) in page {
                try Task.checkCancellation()
                counts.listed += 1
                if let rowSize = unseen.removeValue(forKey: digest) {
                    if rowSize != size {
                        // Not what was committed under this digest.
                        try await blobs.remove(digest)
                        try await metadata.removeObject(digest)
                        counts.removed += 1
                    }
                    continue
                }
                if try await metadata.object(digest) != nil { continue }
                if try await blobs.verify(digest) {
                    let mediaType = await manifestMediaType(digest, size: size)
                    let now = Date()
                    try await metadata.saveObject(ObjectRecord(digest: digest, size: size, mediaType: mediaType, createdAt: now, lastAccess: now))
                    counts.adopted += 1
                } else {
                    try await blobs.remove(digest)
                    counts.removed += 1
                }
            }
        }
        for digest in unseen.keys {
            try Task.checkCancellation()
            if try await blobs.size(of: digest) == nil {
                try await metadata.removeObject(digest)
                counts.dropped += 1
            }
        }
        logger.notice("reconciled the cache with its metadata", metadata: [
            "blobs_listed": "\(counts.listed)", "rows_without_object": "\(counts.dropped)", "objects_adopted": "\(counts.adopted)",
            "objects_removed": "\(counts.removed)",
        ])
        return counts
    }

    /// ``reconcileInPages()`` as the service runs it: a failure is logged and the gateway goes
    /// on serving (the next start, or `mirrorgate gc`, tries again).
    func reconcileInBackground() async {
        logger.info("reconciling the cache with its metadata in the background")
        do {
            try await reconcileInPages()
        } catch {
            if Task.isCancelled {
                logger.info("background reconciliation stopped by the shutdown; the next start runs it again")
            } else {
                let detail = (error as? StorageError)?.logDescription ?? "\(error)"
                logger.error("background reconciliation of the cache failed; the next start runs it again", metadata: ["error": "\(detail)"])
            }
        }
    }
}
