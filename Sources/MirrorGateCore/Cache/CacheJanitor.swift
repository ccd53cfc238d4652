import Foundation
import Logging
import MirrorGateStorage
import RegistryModel
import ServiceLifecycle
import Synchronization

/// Keeps the cache within `storage.max_size` and consistent:
/// - records reads of cached objects and writes them to the metadata store in batches;
/// - when the cache is over the cap, evicts least recently used objects down to about 90 %
///   (hysteresis), never one a response is reading;
/// - reconciles files and metadata at start-up (after `kill -9` at any instant): before
///   serving for a file system (``reconcile()``), or page by page in the background for a
///   bucket too large to list first (``reconcileInPages()``);
/// - notices a full or unwritable disk, so blobs are served as a verified pass-through, and
///   probes until writing works again.
public final class CacheJanitor: Service {
    public struct Pass: Sendable, Equatable {
        public var freedBytes: UInt64
        public var freedObjects: Int
        public var sizeAfter: UInt64
    }

    let blobs: any BlobStore
    let metadata: any MetadataStore
    let maxSize: UInt64
    let interval: Duration
    /// Whether ``run()`` reconciles the store page by page beside its rounds.
    let reconcilesInBackground: Bool
    /// Whether this replica may evict now: with several replicas on one cache, one at a time.
    let leadership: any JanitorLeadership
    let logger: Logger
    private let accesses = Mutex<[Digest: Date]>([:])
    /// Reads in progress per object, and objects being evicted (which cannot be leased).
    private let leases = Mutex<(readers: [Digest: Int], evicting: Set<Digest>)>(([:], []))
    private let unwritable = Mutex<String?>(nil)
    private let passRunning = Mutex(false)
    /// Told each object evicted, once its file is gone (in-memory copies drop it).
    private let evictionObservers = Mutex<[@Sendable (Digest) -> Void]>([])

    /// - Parameter reconcileInBackground: run ``reconcileInPages()`` when the service starts,
    ///   beside the rounds (a bucket's listing takes too long to hold up start-up).
    /// - Parameter leadership: asked before every eviction pass (``SoleJanitor``: one replica).
    public init(
        blobs: any BlobStore, metadata: any MetadataStore, maxSize: UInt64, interval: Duration = .seconds(5),
        reconcileInBackground: Bool = false, leadership: any JanitorLeadership = SoleJanitor(), logger: Logger
    ) {
        self.leadership = leadership
        self.blobs = blobs
        self.metadata = metadata
        self.maxSize = maxSize
        self.interval = interval
        self.reconcilesInBackground = reconcileInBackground
        self.logger = logger
    }

    // MARK: Service

    public func run() async throws {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.rounds()
                return true
            }
            if reconcilesInBackground {
                group.addTask {
                    await self.reconcileInBackground()
                    return false
                }
            }
            // A shutdown does not wait for the rest of a bucket's listing: it resumes at the next start.
            while let roundsEnded = await group.next() {
                if roundsEnded { group.cancelAll() }
            }
        }
        await flushAccesses()
    }

    private func rounds() async {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            } catch {
                break
            }
            await tick()
        }
    }

    /// One round: persist reads, recover from a full disk, evict if over the cap.
    public func tick() async {
        await flushAccesses()
        if let reason = unwritable.withLock({ $0 }) {
            if await blobs.probeWritable() {
                unwritable.withLock { $0 = nil }
                logger.notice("cache storage is writable again: caching resumed", metadata: ["was": "\(reason)"])
            }
        }
        await enforceCap()
    }

    /// Evicts down to 90 % if the cache is over `max_size`; called on the timer and after each
    /// new blob is committed, so the cache does not wait a whole interval over its cap. At most
    /// one pass runs at a time.
    public func enforceCap() async {
        let start = passRunning.withLock { running -> Bool in
            defer { running = true }
            return !running
        }
        guard start else { return }
        defer { passRunning.withLock { $0 = false } }
        do {
            // Another replica's janitor evicts from the shared cache; two at once would both
            // free the same excess.
            if try await metadata.totalSize() > maxSize, await leadership.mayEvict() {
                _ = try await evict(downTo: maxSize / 10 * 9)
            }
        } catch {
            logger.error("cache eviction failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Reads and leases

    /// Notes a read of a cached object (for LRU).
    public func recordAccess(_ digest: Digest) {
        accesses.withLock { $0[digest] = Date() }
    }

    /// Protects a cached object from eviction while a response reads it; released when the
    /// lease is deallocated (the response body is done). `nil` while the object is being
    /// evicted: the caller treats it as not cached.
    func lease(_ digest: Digest) -> ReadLease? {
        let granted = leases.withLock { state -> Bool in
            guard !state.evicting.contains(digest) else { return false }
            state.readers[digest, default: 0] += 1
            return true
        }
        return granted ? ReadLease(digest: digest, janitor: self) : nil
    }

    func release(_ digest: Digest) {
        leases.withLock { state in
            let n = (state.readers[digest] ?? 1) - 1
            state.readers[digest] = n > 0 ? n : nil
        }
    }

    private func flushAccesses() async {
        let batch = accesses.withLock { map -> [Digest: Date] in
            defer { map.removeAll(keepingCapacity: true) }
            return map
        }
        do {
            try await metadata.touch(batch)
        } catch {
            // Put them back; the next round retries.
            accesses.withLock { map in
                for (digest, at) in batch where (map[digest] ?? .distantPast) < at { map[digest] = at }
            }
        }
    }

    // MARK: Eviction

    /// Calls `observer` with every object this janitor evicts, after its file is removed.
    public func onEviction(_ observer: @escaping @Sendable (Digest) -> Void) {
        evictionObservers.withLock { $0.append(observer) }
    }

    /// Evicts least recently used objects until the cache holds at most `target` bytes.
    public func evict(downTo target: UInt64) async throws -> Pass {
        await flushAccesses()
        var size = try await metadata.totalSize()
        var freed: UInt64 = 0
        var count = 0
        var skipped = Set<Digest>()
        while size > target {
            let candidates = try await metadata.evictionCandidates(limit: 256 + skipped.count).filter { !skipped.contains($0.digest) }
            if candidates.isEmpty { break }
            for object in candidates where size > target {
                // Claim the object under the lease lock: no read may start on it from here on.
                let claimed = leases.withLock { state -> Bool in
                    guard state.readers[object.digest] == nil else { return false }
                    state.evicting.insert(object.digest)
                    return true
                }
                guard claimed else {
                    skipped.insert(object.digest)
                    continue
                }
                defer { _ = leases.withLock { $0.evicting.remove(object.digest) } }
                try await metadata.removeObject(object.digest)
                try await blobs.remove(object.digest)
                for observer in evictionObservers.withLock({ $0 }) { observer(object.digest) }
                size -= min(size, object.size)
                freed += object.size
                count += 1
            }
            if candidates.allSatisfy({ skipped.contains($0.digest) }) { break }
        }
        if count > 0 {
            logger.info("evicted least recently used objects", metadata: [
                "freed_bytes": "\(freed)", "objects": "\(count)", "cache_bytes": "\(size)", "max_size": "\(maxSize)",
            ])
        }
        GatewayMetrics.evicted(objects: count, bytes: freed)
        return Pass(freedBytes: freed, freedObjects: count, sizeAfter: size)
    }

    // MARK: Disk full

    /// Whether new content can be cached now.
    public var isWritable: Bool { unwritable.withLock { $0 == nil } }

    /// Why caching is suspended, if it is.
    public var unwritableReason: String? { unwritable.withLock { $0 } }

    /// Switches to pass-through after a storage failure such as ENOSPC.
    public func storageFailed(_ error: StorageError) {
        guard error.isOutOfSpaceOrReadOnly else { return }
        let first = unwritable.withLock { state -> Bool in
            // Shown by /readyz and the status page: the errno class, never the path.
            defer { state = error.summary }
            return state == nil
        }
        if first {
            logger.error("cache storage is full or not writable: serving as a verified pass-through without caching", metadata: ["error": "\(error.logDescription)"])
        }
    }

    // MARK: Start-up reconciliation

    /// Makes files and metadata agree after a crash: drops rows whose file is missing,
    /// re-hashes files without a row and adopts those that match their name (removing the
    /// rest). Temporary files were already removed when the store opened.
    public func reconcile() async throws {
        let files = try await blobs.allBlobs()
        let rows = try await metadata.allObjects()
        var dropped = 0
        for digest in rows.keys where files[digest] == nil {
            try await metadata.removeObject(digest)
            dropped += 1
        }
        var adopted = 0
        var removed = 0
        for (digest, size) in files where rows[digest] == nil {
            if try await blobs.verify(digest) {
                let mediaType = await manifestMediaType(digest, size: size)
                let now = Date()
                try await metadata.saveObject(ObjectRecord(digest: digest, size: size, mediaType: mediaType, createdAt: now, lastAccess: now))
                adopted += 1
            } else {
                try await blobs.remove(digest)
                removed += 1
            }
        }
        for (digest, size) in files where rows[digest] != nil && rows[digest] != size {
            // A size that disagrees with the row means the file is not what was committed.
            try await blobs.remove(digest)
            try await metadata.removeObject(digest)
            removed += 1
        }
        if dropped + adopted + removed > 0 {
            logger.notice("reconciled the cache with its metadata", metadata: [
                "rows_without_file": "\(dropped)", "files_adopted": "\(adopted)", "files_removed": "\(removed)",
            ])
        }
    }

    /// A re-adopted file's manifest media type, if it is a manifest.
    func manifestMediaType(_ digest: Digest, size: UInt64) async -> String? {
        guard size <= UInt64(PullService.manifestLimit), let bytes = try? await blobs.read(digest, limit: PullService.manifestLimit) else { return nil }
        return ManifestDocument.servedType(contentType: nil, body: bytes.readableBytesView)
    }
}

/// Keeps one cached object from eviction while it lives.
final class ReadLease: Sendable {
    let digest: Digest
    let janitor: CacheJanitor

    init(digest: Digest, janitor: CacheJanitor) {
        self.digest = digest
        self.janitor = janitor
    }

    deinit { janitor.release(digest) }
}
