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

    private let inflight = Mutex<[Digest: InFlightBlob]>([:])
    /// Bytes promised to running fetches, so concurrent fetches cannot together overflow
    /// the disk after each passed the free-space check alone.
    private let reservations = Mutex<[Digest: UInt64]>([:])
    private let jobs: AsyncStream<Job>
    private let submit: AsyncStream<Job>.Continuation
    let pool: UpstreamPool
    let blobs: any BlobStore
    let metadata: any MetadataStore
    let stallTimeout: Duration
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

    /// The in-flight fetch of `digest`, started if none is running.
    public func blob(_ digest: Digest, registry: String, repository: RepositoryName) -> InFlightBlob {
        let (blob, isNew) = inflight.withLock { map -> (InFlightBlob, Bool) in
            if let existing = map[digest] { return (existing, false) }
            let blob = InFlightBlob(digest: digest, threadPool: threadPool)
            map[digest] = blob
            return (blob, true)
        }
        if isNew { submit.yield(Job(blob: blob, registry: registry, repository: repository)) }
        return blob
    }

    /// Fetches running and the clients following them.
    public var singleFlight: (fetches: Int, waiters: Int) {
        let blobs = inflight.withLock { Array($0.values) }
        return (blobs.count, blobs.reduce(0) { $0 + $1.readers })
    }

    /// Whether a fetch of `digest` is running (readers can still join it).
    public func isFetching(_ digest: Digest) -> Bool {
        inflight.withLock { $0[digest] != nil }
    }

    /// Told about storage failures (disk full) so new requests pass through.
    public let storageFailures = Mutex<(@Sendable (StorageError) -> Void)?>(nil)
    /// Called after a blob is committed to the cache (to enforce `storage.max_size`).
    public let committed = Mutex<(@Sendable () async -> Void)?>(nil)

    /// Number of fetches running now.
    public var inflightCount: Int { inflight.withLock { $0.count } }

    // MARK: - The fetch

    private func fetch(_ job: Job) async {
        let blob = job.blob
        let digest = blob.digest
        defer {
            _ = inflight.withLock { $0.removeValue(forKey: digest) }
            _ = reservations.withLock { $0.removeValue(forKey: digest) }
        }
        // A request that just missed the cache while the previous fetch of this digest was
        // finishing: serve the stored file instead of fetching again.
        if case .file(let path, let size)? = try? await blobs.locate(digest), let file = try? await openFile(path) {
            blob.begin(file: file, restart: false)
            blob.finish(.verified, size: size)
            return
        }
        var attempts = UpstreamAttempts()
        var restart = false
        var mismatched = Set<String>()
        var served: String?
        fetchLoop: while true {
            var ingest: (any BlobIngest)?
            do {
                let newIngest = try await blobs.makeIngest(for: digest)
                ingest = newIngest
                let file = try await openReader(newIngest)
                blob.begin(file: file, restart: restart)
                var hasher = ContentHasher(digest.algorithm)
                var written: UInt64 = 0
                var size: UInt64?
                for upstream in pool.candidates(registry: job.registry, purpose: .content) where !mismatched.contains(upstream.name) {
                    guard pool.admit(upstream) else {
                        attempts.skipped(upstream, "circuit open")
                        continue
                    }
                    let before = written
                    let result = await transfer(
                        from: upstream, job: job, ingest: newIngest, hasher: &hasher, written: &written, size: &size)
                    GatewayMetrics.upstreamBytes(upstream, kind: .blob, bytes: written - before)
                    switch result {
                    case .complete:
                        let actual = hasher.finalize()
                        if actual != digest {
                            attempts.failed(upstream, "digest mismatch (content hashes to \(actual))")
                            logger.error("upstream sent content that does not match its digest; not cached", metadata: [
                                "upstream": "\(upstream.name)", "digest": "\(digest)", "actual": "\(actual)",
                            ])
                            pool.recordFailure(upstream, "digest mismatch")
                            GatewayMetrics.upstreamFailure(upstream, reason: .digestMismatch)
                            mismatched.insert(upstream.name)
                            await newIngest.discard()
                            ingest = nil
                            restart = true
                            continue fetchLoop
                        }
                        try await newIngest.commit(verifiedAs: actual)
                        ingest = nil
                        let now = Date()
                        try? await metadata.saveObject(ObjectRecord(digest: digest, size: written, mediaType: nil, createdAt: now, lastAccess: now))
                        served = upstream.name
                        blob.source = upstream.name
                        if !attempts.isEmpty { blob.skipped = attempts.description }
                        blob.finish(.verified, size: written)
                        if let hook = committed.withLock({ $0 }) { await hook() }
                        break fetchLoop
                    case .notFound(let status):
                        attempts.notFound(upstream, status: status)
                    case .budget(let until):
                        attempts.failed(upstream, error: .rateLimited(until: until))
                    case .storage(let error):
                        throw error
                    case .failed(let reason, let timeout, let status):
                        attempts.failed(upstream, reason, timeout: timeout, status: status)
                    }
                }
                await ingest?.discard()
                ingest = nil
                let error = attempts.clientError(notFound: RegistryError(.blobUnknown, "blob unknown to every upstream: \(digest)"))
                blob.finish(.failed(error), size: nil)
                break fetchLoop
            } catch {
                await ingest?.discard()
                let message = (error as? StorageError)?.description ?? "\(error)"
                if let storage = error as? StorageError, let report = storageFailures.withLock({ $0 }) { report(storage) }
                logger.error("blob fetch failed in storage", metadata: ["digest": "\(digest)", "error": "\(message)"])
                // The client gets the errno class, not the path (the log above has it).
                let summary = (error as? StorageError)?.summary ?? "internal error"
                blob.finish(.failed(RegistryError(.unavailable, status: 503, "cache storage failed (\(summary)); retry: the gateway now passes blobs through")), size: nil)
                break fetchLoop
            }
        }
        logger.info("blob fetch finished", metadata: [
            "digest": "\(digest)", "registry": "\(job.registry)", "repository": "\(job.repository)",
            "upstream": "\(served ?? "-")", "skipped": "\(attempts.isEmpty ? "-" : attempts.description)",
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
        case complete
        case storage(StorageError)
        case budget(Date?)
        case notFound(Int)
        case failed(String, timeout: Bool, status: Int?)
    }

    /// Moves bytes from one upstream into the ingest, continuing at `written`.
    private func transfer(
        from upstream: Upstream, job: Job, ingest: any BlobIngest, hasher: inout ContentHasher,
        written: inout UInt64, size: inout UInt64?
    ) async -> TransferResult {
        let remote = upstream.remoteName(job.repository.value)
        var headers = HTTPHeaders()
        if written > 0 { headers.add(name: "Range", value: "bytes=\(written)-") }
        let response: UpstreamResponse
        do {
            response = try await pool.send(
                .init(method: .GET, path: "\(remote)/blobs/\(job.blob.digest)", headers: headers, repository: remote), to: upstream)
        } catch {
            if case .rateLimited(let until) = error { return .budget(until) }
            return .failed(error.description, timeout: error.isTimeout, status: nil)
        }
        var skip: UInt64 = 0
        switch response.status {
        case 200:
            skip = written
            if let length = response.contentLength {
                if let size, size != length {
                    await response.discardBody()
                    return .failed("size \(length) differs from \(size) announced earlier", timeout: false, status: 200)
                }
                size = length
            }
        case 206 where written > 0:
            guard let range = response.header("content-range"), let start = Self.contentRangeStart(range), start == written else {
                await response.discardBody()
                return .failed("206 with an unexpected Content-Range", timeout: false, status: 206)
            }
            if size == nil, let total = Self.contentRangeTotal(response.header("content-range") ?? "") { size = total }
        case 404:
            await response.discardBody()
            return .notFound(404)
        case 401, 403:
            await response.discardBody()
            return .notFound(response.status)
        default:
            await response.discardBody()
            return .failed("answered \(response.status)", timeout: false, status: response.status)
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
            case watchdog(TransferResult)
            case pump(TransferResult, ContentHasher, UInt64)
        }
        let (outcome, finalHasher, finalWritten) = await withTaskGroup(of: Child.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: stall / 4)
                    if progress.idle > stall {
                        return .watchdog(.failed("body stalled for more than \(stall)", timeout: true, status: nil))
                    }
                }
                return .watchdog(.complete)
            }
            group.addTask {
                var hasher = startHasher
                var written = startWritten
                var skip = skipStart
                var result: TransferResult = .complete
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
                            result = .failed("sent more bytes than its Content-Length", timeout: false, status: nil)
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
                        result = .failed("body ended after \(written) of \(knownSize) bytes", timeout: false, status: nil)
                    }
                } catch let storage as StorageError {
                    result = .storage(storage)
                } catch {
                    result = .failed("body failed: \(UpstreamClient.classify(error))", timeout: false, status: nil)
                }
                return .pump(result, hasher, written)
            }
            var verdict: TransferResult?
            var pumped: (TransferResult, ContentHasher, UInt64)?
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
        if case .failed(let reason, _, _) = outcome {
            pool.recordFailure(upstream, reason)
        }
        return outcome
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
