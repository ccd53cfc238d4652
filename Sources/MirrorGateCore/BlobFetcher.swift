import Foundation
import Logging
import MirrorGateStorage
import MirrorGateUpstream
import NIOCore
import NIOHTTP1
import NIOPosix
import RegistryModel
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs upstream blob fetches: one per digest however many clients ask at once, each in a
/// task of this service's task group (so a fetch outlives the client that started it, fills
/// the cache, and is cancelled on shutdown).
///
/// A fetch walks the upstreams in order. When an upstream fails part-way, the next one
/// continues with `Range: bytes=N-` (or the first N bytes of a full answer are skipped), and
/// the joined bytes are hashed; a digest mismatch restarts from byte 0 with the next upstream.
public final class BlobFetcher: Service {
    struct Job: Sendable {
        let blob: InFlightBlob
        let registry: String
        let repository: RepositoryName
    }

    /// Fetches in progress, per registry: a request through one registry never joins (and so is
    /// never failed by) a fetch through another registry's upstreams.
    private let inflight = Mutex<[FlightKey: Flight]>([:])

    struct FlightKey: Hashable {
        var registry: String
        var digest: Digest
    }

    /// A fetch in progress and the repository it fetches for.
    public struct Flight: Sendable {
        public let blob: InFlightBlob
        public let repository: RepositoryName
    }
    /// Bytes promised to running fetches, so concurrent fetches cannot together overflow
    /// the disk after each passed the free-space check alone.
    private let reservations = Mutex<[Digest: UInt64]>([:])
    private let jobs: AsyncStream<Job>
    private let submit: AsyncStream<Job>.Continuation
    let pool: UpstreamPool
    let blobs: any BlobStore
    let metadata: any MetadataStore
    let stallTimeout: Duration
    /// Which repositories hold which content; a committed blob is linked to the repository it
    /// was fetched for.
    let links: RepositoryLinks
    let threadPool: NIOThreadPool
    /// Upstream fetches running at once.
    let maxConcurrentFetches: Int
    let logger: Logger

    public init(
        pool: UpstreamPool, blobs: any BlobStore, metadata: any MetadataStore, stallTimeout: Duration,
        maxConcurrentFetches: Int = 32, threadPool: NIOThreadPool = .singleton, logger: Logger
    ) {
        self.maxConcurrentFetches = max(1, maxConcurrentFetches)
        (jobs, submit) = AsyncStream.makeStream(of: Job.self)
        self.pool = pool
        self.blobs = blobs
        self.metadata = metadata
        self.stallTimeout = stallTimeout
        self.links = RepositoryLinks(index: metadata, logger: logger)
        self.threadPool = threadPool
        self.logger = logger
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for await job in jobs.cancelOnGracefulShutdown() {
                // `limits.max_concurrent_fetches`: later fetches wait here, their clients with them.
                if running >= maxConcurrentFetches {
                    await group.next()
                    running -= 1
                }
                group.addTask { await self.fetch(job) }
                running += 1
            }
        }
    }

    /// The in-flight fetch of `digest` through `registry`, started (for `repository`) if none
    /// is running.
    public func blob(_ digest: Digest, registry: String, repository: RepositoryName) -> Flight {
        let key = FlightKey(registry: registry, digest: digest)
        let (flight, isNew) = inflight.withLock { map -> (Flight, Bool) in
            if let existing = map[key] { return (existing, false) }
            let flight = Flight(blob: InFlightBlob(digest: digest, threadPool: threadPool), repository: repository)
            map[key] = flight
            return (flight, true)
        }
        if isNew { submit.yield(Job(blob: flight.blob, registry: registry, repository: repository)) }
        return flight
    }

    /// Fetches running and the clients following them.
    public var singleFlight: (fetches: Int, waiters: Int) {
        let blobs = inflight.withLock { $0.values.map(\.blob) }
        return (blobs.count, blobs.reduce(0) { $0 + $1.readers })
    }

    /// Whether a fetch of `digest` through `registry` is running (readers can still join it).
    public func isFetching(_ digest: Digest, registry: String) -> Bool {
        inflight.withLock { $0[FlightKey(registry: registry, digest: digest)] != nil }
    }

    /// Told about storage failures (disk full) so new requests pass through.
    public let storageFailures = Mutex<(@Sendable (StorageError) -> Void)?>(nil)
    /// Called after a blob is committed to the cache (to enforce `storage.max_size`).
    public let committed = Mutex<(@Sendable () async -> Void)?>(nil)

    // MARK: - The fetch

    private func fetch(_ job: Job) async {
        let blob = job.blob
        let digest = blob.digest
        defer {
            _ = inflight.withLock { $0.removeValue(forKey: FlightKey(registry: job.registry, digest: digest)) }
            _ = reservations.withLock { $0.removeValue(forKey: digest) }
        }
        // A request that just missed the cache while the previous fetch of this digest was
        // finishing: serve the stored file instead of fetching again (only when this
        // repository is known to hold it; otherwise the fetch below is its confirmation).
        if case .file(let path, let size)? = try? await blobs.locate(digest),
           await links.isLinked(digest, registry: job.registry, repository: job.repository.value),
           let file = try? await openFile(path)
        {
            blob.begin(file: file, restart: false)
            blob.finish(.verified, size: size)
            return
        }
        var restart = false
        var mismatched = Set<Upstream.ID>()
        var served: String?
        var note: String?
        fetchLoop: while true {
            var ingest: (any BlobIngest)?
            var walk = pool.walk(registry: job.registry, ask: .blob(digest, method: .GET, from: 0), repository: job.repository, excluding: mismatched)
            do {
                let newIngest = try await blobs.makeIngest(for: digest)
                ingest = newIngest
                let file = try await openReader(newIngest)
                blob.begin(file: file, restart: restart)
                var hasher = ContentHasher(digest.algorithm)
                var written: UInt64 = 0
                var size: UInt64?
                while let upstream = await walk.next() {
                    let before = written
                    walk.ask = .blob(digest, method: .GET, from: written)
                    let result = await transfer(
                        from: upstream, walk: &walk, job: job, ingest: newIngest, hasher: &hasher, written: &written, size: &size)
                    GatewayMetrics.upstreamBytes(upstream, kind: .blob, bytes: written - before)
                    switch result {
                    case .complete:
                        let actual = hasher.finalize()
                        if actual != digest {
                            logger.error("upstream sent content that does not match its digest; not cached", metadata: [
                                "upstream": "\(upstream.name)", "digest": "\(digest)", "actual": "\(actual)",
                            ])
                            walk.fail(upstream, .init(.digestMismatch, "digest mismatch (content hashes to \(actual))"))
                            mismatched.insert(upstream.id)
                            note = walk.note
                            await newIngest.discard()
                            ingest = nil
                            restart = true
                            continue fetchLoop
                        }
                        try await newIngest.commit(verifiedAs: actual)
                        ingest = nil
                        let now = Date()
                        try? await metadata.saveObject(ObjectRecord(digest: digest, size: written, mediaType: nil, createdAt: now, lastAccess: now))
                        await links.link(digest, registry: job.registry, repository: job.repository.value)
                        served = upstream.name
                        note = [note, walk.note].compactMap { $0 }.joined(separator: "; ").nonEmpty
                        blob.finish(.verified, size: written, source: upstream.name, skipped: note)
                        if let hook = committed.withLock({ $0 }) { await hook() }
                        break fetchLoop
                    case .storage(let error):
                        throw error
                    case .answered:
                        continue
                    }
                }
                await ingest?.discard()
                ingest = nil
                note = [note, walk.note].compactMap { $0 }.joined(separator: "; ").nonEmpty
                let error = walk.clientError(notFound: RegistryError(.blobUnknown, "blob unknown to every upstream: \(digest)"))
                blob.finish(.failed(error), size: nil, skipped: note)
                break fetchLoop
            } catch {
                await ingest?.discard()
                let message = (error as? StorageError)?.description ?? "\(error)"
                if let storage = error as? StorageError, let report = storageFailures.withLock({ $0 }) { report(storage) }
                logger.error("blob fetch failed in storage", metadata: ["digest": "\(digest)", "error": "\(message)"])
                blob.finish(.failed(RegistryError(.blobUnknown, status: 503, "cache storage failed (\(message)); retry: the gateway now passes blobs through")), size: nil)
                break fetchLoop
            }
        }
        logger.info("blob fetch finished", metadata: [
            "digest": "\(digest)", "registry": "\(job.registry)", "repository": "\(job.repository)",
            "upstream": "\(served ?? "-")", "skipped": "\(note ?? "-")",
        ])
    }

    private func openReader(_ ingest: any BlobIngest) async throws -> InFlightBlob.SharedFile {
        guard let path = (ingest as? any LocalBlobIngest)?.temporaryPath else {
            throw StorageError.metadata("blob store does not expose in-flight files")
        }
        return try await openFile(path)
    }

    private func openFile(_ path: String) async throws -> InFlightBlob.SharedFile {
        try await threadPool.runIfActive {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw StorageError.io(operation: "open", path: path, errno: errno) }
            return InFlightBlob.SharedFile(fd: fd)
        }
    }

    enum TransferResult: Sendable {
        /// The body arrived to its end (the caller checks the digest).
        case complete
        /// The cache cannot take it.
        case storage(StorageError)
        /// The upstream did not deliver; its outcome is recorded in the walk.
        case answered
    }

    /// How pumping one body ended.
    enum PumpResult: Sendable {
        case complete
        case storage(StorageError)
        case failed(UpstreamAttempts.Failure)

        var transfer: TransferResult {
            switch self {
            case .complete: .complete
            case .storage(let error): .storage(error)
            case .failed: .answered
            }
        }
    }

    /// Moves bytes from one upstream into the ingest, continuing at `written`.
    private func transfer(
        from upstream: Upstream, walk: inout UpstreamWalk, job: Job, ingest: any BlobIngest, hasher: inout ContentHasher,
        written: inout UInt64, size: inout UInt64?
    ) async -> TransferResult {
        guard let response = await walk.send(to: upstream) else { return .answered }
        var skip: UInt64 = 0
        switch response.status {
        case 200:
            skip = written
            if let length = response.contentLength {
                if let size, size != length {
                    await response.discardBody()
                    walk.fail(upstream, .init(.badResponse, "size \(length) differs from \(size) announced earlier", status: 200))
                    return .answered
                }
                size = length
            }
        case 206 where written > 0:
            guard let range = response.header("content-range"), let start = Self.contentRangeStart(range), start == written else {
                await response.discardBody()
                walk.fail(upstream, .init(.badResponse, "206 with an unexpected Content-Range", status: 206))
                return .answered
            }
            if size == nil, let total = Self.contentRangeTotal(response.header("content-range") ?? "") { size = total }
        default:
            await walk.reject(response)
            return .answered
        }
        // A blob that cannot fit fails now, before any reader has a byte of it, so every
        // client can be served as a pass-through instead of being cut off half-way.
        if written == 0, let size, let free = await blobs.availableSpace() {
            let digest = job.blob.digest
            let fits = reservations.withLock { reserved -> Bool in
                let others = reserved.filter { $0.key != digest }.values.reduce(0, +)
                guard free >= others + size + Self.spaceMargin else { return false }
                reserved[digest] = size
                return true
            }
            if !fits {
                await response.discardBody()
                return .storage(.io(operation: "reserve \(size) bytes", path: "cache", errno: ENOSPC))
            }
        }
        job.blob.publishHead(size: size)

        // Pump the body in a child task; a watchdog child fails the transfer (and cancels the
        // pump, which cancels the upstream request) when no byte arrives for `stallTimeout`.
        let progress = ProgressClock()
        let stall = stallTimeout
        let blob = job.blob
        let startHasher = hasher
        let startWritten = written
        let knownSize = size
        let skipStart = skip
        let body = response.body
        enum Child: Sendable {
            case watchdog(PumpResult)
            case pump(PumpResult, ContentHasher, UInt64)
        }
        let (outcome, finalHasher, finalWritten) = await withTaskGroup(of: Child.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: stall / 4)
                    if progress.idle > stall {
                        return .watchdog(.failed(.init(.timeout, "body stalled for more than \(stall)")))
                    }
                }
                return .watchdog(.complete)
            }
            group.addTask {
                var hasher = startHasher
                var written = startWritten
                var skip = skipStart
                var result: PumpResult = .complete
                do {
                    for try await var chunk in body {
                        progress.tick()
                        if skip > 0 {
                            let drop = Int(min(skip, UInt64(chunk.readableBytes)))
                            chunk.moveReaderIndex(forwardBy: drop)
                            skip -= UInt64(drop)
                            if chunk.readableBytes == 0 { continue }
                        }
                        if let knownSize, written + UInt64(chunk.readableBytes) > knownSize {
                            result = .failed(.init(.badResponse, "sent more bytes than its Content-Length"))
                            break
                        }
                        hasher.update(chunk)
                        try await ingest.write(chunk)
                        // Everything but the newest chunk becomes visible to readers.
                        blob.publishVisible(written)
                        written += UInt64(chunk.readableBytes)
                        progress.tick()
                    }
                    if case .complete = result, let knownSize, written != knownSize {
                        result = .failed(.init(.badResponse, "body ended after \(written) of \(knownSize) bytes"))
                    }
                } catch let storage as StorageError {
                    result = .storage(storage)
                } catch {
                    result = .failed(.init(.connection, "body failed: \(UpstreamClient.classify(error))"))
                }
                return .pump(result, hasher, written)
            }
            var verdict: PumpResult?
            var pumped: (PumpResult, ContentHasher, UInt64)?
            while let child = await group.next() {
                switch child {
                case .watchdog(let result):
                    if case .failed = result, pumped == nil { verdict = result }
                    group.cancelAll()
                case .pump(let result, let hasher, let written):
                    pumped = (result, hasher, written)
                    group.cancelAll()
                }
            }
            let (result, hasher, written) = pumped!
            return (verdict ?? result, hasher, written)
        }
        hasher = finalHasher
        written = finalWritten
        if case .failed(let failure) = outcome {
            walk.fail(upstream, failure)
            return .answered
        }
        return outcome.transfer
    }

    /// Space kept free beyond a blob's size (metadata, other fetches).
    static let spaceMargin: UInt64 = 8 << 20

    /// `bytes 100-199/1000` → 100
    static func contentRangeStart(_ header: String) -> UInt64? {
        guard header.lowercased().hasPrefix("bytes ") else { return nil }
        let spec = header.dropFirst(6)
        guard let dash = spec.firstIndex(of: "-") else { return nil }
        return UInt64(spec[..<dash].trimmingCharacters(in: .whitespaces))
    }

    /// `bytes 100-199/1000` → 1000
    static func contentRangeTotal(_ header: String) -> UInt64? {
        guard let slash = header.lastIndex(of: "/") else { return nil }
        return UInt64(header[header.index(after: slash)...].trimmingCharacters(in: .whitespaces))
    }
}


/// Milliseconds since the last byte of a transfer, readable from a watchdog task.
final class ProgressClock: Sendable {
    private let start = ContinuousClock.now
    private let lastTick = Atomic<Int64>(0)

    func tick() {
        lastTick.store(Int64((ContinuousClock.now - start) / .milliseconds(1)), ordering: .relaxed)
    }

    /// Time since the last tick.
    var idle: Duration {
        .milliseconds(Int64((ContinuousClock.now - start) / .milliseconds(1)) - lastTick.load(ordering: .relaxed))
    }
}
