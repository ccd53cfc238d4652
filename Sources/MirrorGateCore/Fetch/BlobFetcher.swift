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

/// Runs upstream blob fetches: one per digest however many clients ask at once, each in a
/// task of this service's task group (so a fetch outlives the client that started it, fills
/// the cache, and is cancelled on shutdown).
///
/// A fetch walks the upstreams in order. When an upstream fails part-way, the next one
/// continues with `Range: bytes=N-` (or the first N bytes of a full answer are skipped), and
/// the joined bytes are hashed; a digest mismatch restarts from byte 0 with the next upstream.
final class BlobFetcher: Service {
    struct Job: Sendable {
        let blob: InFlightBlob
        let registry: String
        let repository: RepositoryName
    }

    /// Fetches in progress (``FlightKey/blob(registry:digest:)``: per registry, so a request
    /// through one registry never joins, and is never failed by, a fetch through another's).
    let flights: any FlightCoordinator

    /// A fetch in progress and the repository it fetches for.
    struct Flight: Sendable {
        let blob: InFlightBlob
        let repository: RepositoryName
    }
    /// Bytes promised to running fetches, so concurrent fetches cannot together overflow
    /// the disk after each passed the free-space check alone.
    let reservations = Mutex<[Digest: UInt64]>([:])
    private let jobs: AsyncStream<Job>
    private let submit: AsyncStream<Job>.Continuation
    let pool: UpstreamPool
    let blobs: any BlobStore
    let metadata: any MetadataStore
    let limits: Limits
    /// Which repositories hold which content; a committed blob is linked to the repository it
    /// was fetched for.
    let links: RepositoryLinks
    let threadPool: NIOThreadPool
    /// `limits.max_concurrent_fetches`, shared fairly between registries.
    let slots: FetchSlots
    /// Told about commits and storage failures (the janitor); nil in tests without one.
    let events: (any CacheEvents)?
    let logger: Logger

    /// What bounds a fetch.
    struct Limits: Sendable {
        /// No byte for this long from an upstream: that upstream failed (`health.timeout`).
        var stallTimeout: Duration
        /// Fetches running at once (`limits.max_concurrent_fetches`).
        var maxConcurrentFetches: Int
        /// The largest blob fetched (`storage.max_blob_size`).
        var maxBlobSize: UInt64
        /// Slower than this, averaged over ``rateGrace``, is that upstream's failure (0: off).
        var minRate: UInt64
        var rateGrace: Duration

        init(stallTimeout: Duration, maxConcurrentFetches: Int = 32, maxBlobSize: UInt64 = 16 << 30, minRate: UInt64 = 0, rateGrace: Duration = .seconds(30)) {
            self.stallTimeout = stallTimeout
            self.maxConcurrentFetches = max(1, maxConcurrentFetches)
            self.maxBlobSize = maxBlobSize
            self.minRate = minRate
            self.rateGrace = rateGrace
        }
    }

    init(
        pool: UpstreamPool, blobs: any BlobStore, metadata: any MetadataStore, limits: Limits,
        events: (any CacheEvents)?, flights: any FlightCoordinator, threadPool: NIOThreadPool = .singleton, logger: Logger
    ) {
        self.flights = flights
        self.limits = limits
        self.events = events
        self.slots = FetchSlots(capacity: limits.maxConcurrentFetches)
        (jobs, submit) = AsyncStream.makeStream(of: Job.self)
        self.pool = pool
        self.blobs = blobs
        self.metadata = metadata
        self.links = RepositoryLinks(index: metadata, logger: logger)
        self.threadPool = threadPool
        self.logger = logger
    }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            for await job in jobs.cancelOnGracefulShutdown() {
                // Each fetch waits for its slot (`limits.max_concurrent_fetches`) in its task,
                // its clients with it.
                group.addTask { await self.fetch(job) }
            }
        }
    }

    /// The in-flight fetch of `digest` through `registry`, started (for `repository`) if none
    /// is running.
    func blob(_ digest: Digest, registry: String, repository: RepositoryName) -> Flight {
        let (flight, isNew) = flights.blobFlight(.blob(registry: registry, digest: digest)) {
            Flight(blob: InFlightBlob(digest: digest), repository: repository)
        }
        if isNew { submit.yield(Job(blob: flight.blob, registry: registry, repository: repository)) }
        return flight
    }

    /// Fetches running and the clients following them.
    var singleFlight: (fetches: Int, waiters: Int) {
        let blobs = flights.blobFlights.map(\.blob)
        return (blobs.count, blobs.reduce(0) { $0 + $1.readers })
    }

    /// Whether a fetch of `digest` through `registry` is running (readers can still join it).
    func isFetching(_ digest: Digest, registry: String) -> Bool {
        flights.isBlobInFlight(.blob(registry: registry, digest: digest))
    }


    // MARK: - The fetch

    private func fetch(_ job: Job) async {
        let blob = job.blob
        let digest = blob.digest
        guard await slots.acquire(job.registry) else {
            flights.endBlobFlight(.blob(registry: job.registry, digest: digest))
            blob.finish(.failed(RegistryError(.blobUnknown, status: 503, "the gateway is stopping")), size: nil)
            return
        }
        defer { slots.release(job.registry) }
        defer {
            flights.endBlobFlight(.blob(registry: job.registry, digest: digest))
            _ = reservations.withLock { $0.removeValue(forKey: digest) }
        }
        // A request that just missed the cache while the previous fetch of this digest was
        // finishing: serve the stored file instead of fetching again (only when this
        // repository is known to hold it; otherwise the fetch below is its confirmation).
        if let size = try? await blobs.size(of: digest),
           await links.isLinked(digest, registry: job.registry, repository: job.repository.value)
        {
            blob.finishStored(in: blobs, size: size)
            return
        }
        if let cluster = flights.cluster {
            await fetchAcrossReplicas(job, cluster: cluster)
        } else {
            await fetchFromUpstreams(job, resuming: nil, lease: nil)
        }
    }

    /// Bytes of a fetch already spooled (followed from another replica whose stream broke),
    /// which the upstream fetch continues from.
    struct Partial: Sendable {
        var spool: Spool
        var hasher: ContentHasher
        var written: UInt64
        var size: UInt64?
    }

    /// Fetches from the upstreams into the job's blob, continuing `resuming` when given, then
    /// commits: bytes into storage first, the object row after (through `lease` when one is
    /// held, which also ends the lease). A lease is released when the fetch fails.
    func fetchFromUpstreams(_ job: Job, resuming: Partial?, lease: (FetchLease, ReplicaCluster)?) async {
        let blob = job.blob
        let digest = blob.digest
        var resuming = resuming
        var restart = false
        var mismatched = Set<Upstream.ID>()
        var served: String?
        var note: String?
        var committed = false
        /// Whether the spool starts with bytes streamed from another replica.
        var peerPrefix = false
        fetchLoop: while true {
            var spool: Spool?
            var walk = pool.walk(registry: job.registry, ask: .blob(digest, method: .GET, from: 0), repository: job.repository, excluding: mismatched)
            do {
                var hasher = ContentHasher(digest.algorithm)
                var written: UInt64 = 0
                var size: UInt64?
                let newSpool: Spool
                if let partial = resuming {
                    resuming = nil
                    peerPrefix = true
                    newSpool = partial.spool
                    (hasher, written, size) = (partial.hasher, partial.written, partial.size)
                } else {
                    newSpool = try await blobs.makeSpool(for: digest)
                    blob.begin(spool: newSpool, restart: restart)
                }
                spool = newSpool
                while let upstream = await walk.next() {
                    let before = written
                    walk.ask = .blob(digest, method: .GET, from: written)
                    let result = await transfer(
                        from: upstream, walk: &walk, job: job, spool: newSpool, hasher: &hasher, written: &written, size: &size)
                    GatewayMetrics.upstreamBytes(upstream, kind: .blob, bytes: written - before)
                    switch result {
                    case .complete:
                        let actual = hasher.finalize()
                        if actual != digest, peerPrefix {
                            // The first bytes came from another replica's stream: they may be
                            // the wrong ones, not this upstream's. Start over from byte 0.
                            peerPrefix = false
                            logger.warning("a fetch taken over from another replica did not verify; fetching it again from byte 0", metadata: ["digest": "\(digest)"])
                            await newSpool.discard()
                            spool = nil
                            restart = true
                            continue fetchLoop
                        }
                        if actual != digest {
                            logger.error("upstream sent content that does not match its digest; not cached", metadata: [
                                "upstream": "\(upstream.name)", "digest": "\(digest)", "actual": "\(actual)",
                            ])
                            walk.fail(upstream, .init(.digestMismatch, "digest mismatch (content hashes to \(actual))"))
                            mismatched.insert(upstream.id)
                            note = walk.note
                            await newSpool.discard()
                            spool = nil
                            restart = true
                            continue fetchLoop
                        }
                        try await blobs.commit(newSpool, verifiedAs: actual)
                        spool = nil
                        let now = Date()
                        let record = ObjectRecord(digest: digest, size: written, mediaType: nil, createdAt: now, lastAccess: now)
                        if case let (lease, cluster)? = lease {
                            // One transaction: the row, its link and the lease's end; a replica
                            // that claims after it finds the object.
                            committed = (try? await cluster.leases.complete(lease, saving: record, link: (job.registry, job.repository.value))) != nil
                        }
                        if !committed { try? await metadata.saveObject(record) }
                        committed = true
                        await links.link(digest, registry: job.registry, repository: job.repository.value)
                        served = upstream.name
                        note = [note, walk.note].compactMap { $0 }.joined(separator: "; ").nonEmpty
                        blob.finish(.verified, size: written, source: upstream.name, skipped: note)
                        await events?.committed()
                        break fetchLoop
                    case .storage(let error):
                        throw error
                    case .answered:
                        continue
                    }
                }
                await spool?.discard()
                spool = nil
                note = [note, walk.note].compactMap { $0 }.joined(separator: "; ").nonEmpty
                let error = walk.clientError(notFound: RegistryError(.blobUnknown, "blob unknown to every upstream: \(digest)"))
                blob.finish(.failed(error), size: nil, skipped: note)
                break fetchLoop
            } catch {
                await spool?.discard()
                let message = (error as? StorageError)?.logDescription ?? "\(error)"
                if let storage = error as? StorageError { events?.storageFailed(storage) }
                logger.error("blob fetch failed in storage", metadata: ["digest": "\(digest)", "error": "\(message)"])
                // The client gets the errno class, not the path (the log above has it).
                let summary = (error as? StorageError)?.summary ?? "internal error"
                blob.finish(.failed(RegistryError(.blobUnknown, status: 503, "cache storage failed (\(summary)); retry: the gateway now passes blobs through")), size: nil)
                break fetchLoop
            }
        }
        if !committed, case let (lease, cluster)? = lease {
            try? await cluster.leases.release(lease)
        }
        logger.info("blob fetch finished", metadata: [
            "digest": "\(digest)", "registry": "\(job.registry)", "repository": "\(job.repository)",
            "upstream": "\(served ?? "-")", "skipped": "\(note ?? "-")",
        ])
    }

}
