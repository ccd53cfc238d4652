import Foundation
import Logging
import MirrorGateConfig
import MirrorGateStorage
import MirrorGateUpstream
import NIOCore
import NIOHTTP1
import RegistryModel

/// The pull side of the gateway: tag resolution, verified manifest and blob fetches, the
/// cache, and pass-through listings. Independent of the HTTP server.
public final class PullService: Sendable {
    /// A manifest ready to serve.
    public struct Manifest: Sendable {
        public var digest: Digest
        public var mediaType: String
        public var bytes: ByteBuffer
        /// Set when the tag answer is stale (no upstream could confirm it).
        public var staleWarning: String?
        /// Which upstream answered ("cache" when none was asked).
        public var source: String
        /// Upstreams tried before the one that answered, with their reasons.
        public var skipped: String?
        /// Whether the manifest body was fetched from upstream for this request (a cache miss);
        /// false when it came from the cache, even if the tag was revalidated with a HEAD.
        public var fetched = false
        /// How a tag answer from the cache was revalidated.
        public var revalidation: Revalidation = .none
        /// The upstream GET that fetched these bytes for this request, when it spent a pull.
        public var spend: ManifestSpend?
    }

    /// How a tag answer served from the cache relates to its revalidation.
    public enum Revalidation: Sendable {
        /// Younger than `tags.refresh_after`: no upstream asked (or not a tag request).
        case none
        /// Served at once; a revalidation runs in the background.
        case background
        /// The request waited for an upstream to confirm the tag.
        case waited

        /// What the request log and metrics call it.
        public var cacheResult: CacheResult {
            switch self {
            case .none: .hit
            case .background: .hitRevalidating
            case .waited: .revalidated
            }
        }
    }

    /// Where a blob's bytes come from.
    public enum BlobSource: Sendable {
        /// Verified content in the cache.
        case cached(CachedBlob)
        /// A fetch that clients follow as it lands in the cache.
        case inFlight(InFlightBlob)
        /// Storage is full or unwritable: streamed from upstream, verified, not cached.
        case passThrough(PassThroughBlob)
        /// Not cached, and asked for with HEAD: an upstream's HEAD confirmed it (no download).
        case remote(size: UInt64?, source: String, skipped: String?)
    }

    /// An upstream answer passed through (tags list, referrers).
    public struct PassThrough: Sendable {
        public var status: Int
        public var contentType: String?
        public var body: ByteBuffer
        /// Query of the upstream's `Link: <…>; rel="next"`, to be re-rooted at the gateway.
        public var nextQuery: String?
        public var source: String
        public var skipped: String?
    }

    /// Manifests larger than this are refused (containerd rejects over about 4 MiB).
    public static let manifestLimit = 4 << 20

    let config: GatewayConfig
    /// The upstreams with their health and budgets.
    public let pool: UpstreamPool
    let blobs: any BlobStore
    let metadata: any MetadataStore
    let fetcher: BlobFetcher
    /// Eviction, access times and disk-full state; nil where the cache is not managed (tests).
    public let janitor: CacheJanitor?
    /// Hit counts and recent failovers, for the status page and metrics.
    public let activity: GatewayActivity
    let logger: Logger
    /// Which repositories hold which content (content is readable only through them).
    let links: RepositoryLinks
    /// Concurrent requests for one uncached manifest share one upstream GET (one spend), and
    /// concurrent requests for one tag whose answer is stale share one HEAD.
    let flights: any FlightCoordinator
    /// Hot tag answers and manifest bodies in memory, in front of the metadata store.
    let hot = HotManifests()
    /// Background tag revalidations: in flight, and when each tag was last tried.
    let revalidations = Revalidations()

    init(config: GatewayConfig, blobs: any BlobStore, metadata: any MetadataStore, fetcher: BlobFetcher, janitor: CacheJanitor?, logger: Logger) {
        self.config = config
        self.links = fetcher.links
        self.flights = fetcher.flights
        self.janitor = janitor
        self.activity = GatewayActivity()
        self.pool = fetcher.pool
        self.blobs = blobs
        self.metadata = metadata
        self.fetcher = fetcher
        self.logger = logger
        janitor?.onEviction { [hot] in hot.forgetBody($0) }
    }

    // MARK: - Manifests

    /// The manifest for `reference`, negotiated against the client's `Accept` headers.
    public func manifest(registry: String, name: RepositoryName, reference: Reference, accept: [String]) async throws(RegistryError) -> Manifest {
        let negotiation = ManifestNegotiation(acceptHeaders: accept)
        var manifest: Manifest
        switch reference {
        case .digest(let digest):
            manifest = try await manifestByDigest(registry: registry, name: name, digest: digest)
        case .tag(let tag):
            manifest = try await manifestByTag(registry: registry, name: name, tag: tag)
        }
        switch negotiation.decide(mediaType: manifest.mediaType, requestedByTag: reference.digest == nil) {
        case .serve:
            return manifest
        case .notAcceptable(let message):
            throw RegistryError(.manifestUnknown, message)
        case .serveLinuxAmd64Child:
            guard let child = ManifestDocument.decode(manifest.bytes.readableBytesView)?.linuxAmd64Child else {
                throw RegistryError(.manifestUnknown, "manifest list has no linux/amd64 entry and the client does not accept manifest lists")
            }
            var resolved = try await manifestByDigest(registry: registry, name: name, digest: child)
            resolved.staleWarning = manifest.staleWarning
            resolved.spend = resolved.spend ?? manifest.spend
            return resolved
        }
    }

    private func manifestByTag(registry: String, name: RepositoryName, tag: String) async throws(RegistryError) -> Manifest {
        let key = HotManifests.TagKey(registry: registry, repository: name.value, tag: tag)
        var record = hot.tag(key)
        if record == nil, let stored = try? await metadata.tag(registry: registry, repository: name.value, tag: tag) {
            hot.remember(stored)
            record = stored
        }
        // A tag record is the upstream's word that this repository holds its digest: within
        // the TTL it is trusted even if the manifest itself was evicted (fetched again by
        // digest, with no tag HEAD). Past refresh_after it is still served at once, and
        // revalidated in the background (stale-while-revalidate).
        if let record {
            let age = Date().timeIntervalSince(record.checkedAt)
            if age < config.tags.ttl.seconds {
                var cached: Manifest
                if let hit = await cachedManifest(record.digest) {
                    cached = hit
                    cached.source = "cache"
                } else {
                    cached = try await manifestByDigest(registry: registry, name: name, digest: record.digest)
                }
                if age >= config.tags.refreshAfter.seconds {
                    cached.revalidation = .background
                    revalidateInBackground(registry: registry, name: name, tag: tag, record: record)
                }
                return cached
            }
        }
        var answer = try await tagFlight(registry: registry, name: name, tag: tag, record: record)
        if record != nil, !answer.fetched, answer.staleWarning == nil { answer.revalidation = .waited }
        return answer
    }

    /// One revalidation of a tag for everyone asking meanwhile, in this process or (with a
    /// shared coordinator) in another replica.
    private func tagFlight(registry: String, name: RepositoryName, tag: String, record: TagRecord?) async throws(RegistryError) -> Manifest {
        try await flights.run(.tag(registry: registry, repository: name.value, tag: tag)) { [self] () throws(RegistryError) -> Manifest in
            try await resolveTag(registry: registry, name: name, tag: tag, record: record)
        } reread: { [self] in
            // Another replica revalidated the tag meanwhile: its answer is in the shared index.
            guard let fresh = try? await metadata.tag(registry: registry, repository: name.value, tag: tag),
                  Date().timeIntervalSince(fresh.checkedAt) < config.tags.ttl.seconds
            else { return nil }
            hot.remember(fresh)
            return await cachedManifest(fresh.digest)
        }
    }

    /// Starts one revalidation of a tag that is past refresh_after, unless one is running or
    /// was tried within refresh_after (a failed one does not retry on every request). It is
    /// the same flight a waiting request would start (requests past the TTL join it), through
    /// the usual upstream walk; a moved digest is fetched in the background too, so the next
    /// request gets it. A failure leaves the cached answer in place.
    private func revalidateInBackground(registry: String, name: RepositoryName, tag: String, record: TagRecord) {
        let key = FlightKey.tag(registry: registry, repository: name.value, tag: tag)
        guard revalidations.begin(key, every: config.tags.refreshAfter.seconds) else { return }
        let started = flights.background { [self] in
            // Another replica sharing the index may have revalidated it meanwhile.
            if let shared = try? await metadata.tag(registry: registry, repository: name.value, tag: tag),
               shared.checkedAt > record.checkedAt, Date().timeIntervalSince(shared.checkedAt) < config.tags.refreshAfter.seconds {
                hot.remember(shared)
                revalidations.end(key, moved: shared.digest != record.digest, failure: nil)
                return
            }
            let failure: String?
            var moved = false
            do throws(RegistryError) {
                let fresh = try await tagFlight(registry: registry, name: name, tag: tag, record: record)
                // Served stale: no upstream could confirm the tag.
                failure = fresh.staleWarning == nil ? nil : (fresh.skipped ?? "no upstream could confirm the tag")
                moved = failure == nil && fresh.digest != record.digest
                if moved {
                    logger.info("tag moved: revalidated in the background", metadata: [
                        "registry": "\(registry)", "repository": "\(name)", "tag": "\(tag)",
                        "was": "\(record.digest)", "now": "\(fresh.digest)",
                    ])
                }
            } catch {
                failure = error.message
            }
            if let failure {
                logger.notice("background tag revalidation failed; the cached answer stays", metadata: [
                    "registry": "\(registry)", "repository": "\(name)", "tag": "\(tag)", "error": "\(failure)",
                ])
            }
            revalidations.end(key, moved: moved, failure: failure)
        }
        if !started { revalidations.end(key, failure: "the gateway is stopping") }
    }

    /// Records a tag's upstream answer: in the shared index and in the hot copy.
    func saveTag(_ record: TagRecord) async {
        hot.remember(record)
        try? await metadata.saveTag(record)
    }

    /// The stored manifest `digest`, whoever it was fetched for (callers check the link).
    func cachedManifest(_ digest: Digest) async -> Manifest? {
        if let body = hot.body(digest) {
            janitor?.recordAccess(digest)
            return Manifest(digest: digest, mediaType: body.mediaType, bytes: body.bytes, staleWarning: nil, source: "cache")
        }
        // Only served manifest types: a record from an older version that stored whatever
        // Content-Type an upstream sent (text/html) is not served.
        let record: ObjectRecord?
        do {
            record = try await metadata.object(digest)
        } catch {
            // The shared index cannot be reached: the stored file (verified when committed)
            // says what it is, as reconciliation reads it, so cached manifests still serve.
            guard let bytes = try? await blobs.read(digest, limit: Self.manifestLimit),
                  let mediaType = ManifestDocument.servedType(contentType: nil, body: bytes.readableBytesView)
            else { return nil }
            janitor?.recordAccess(digest)
            hot.remember(.init(mediaType: mediaType, bytes: bytes), for: digest)
            return Manifest(digest: digest, mediaType: mediaType, bytes: bytes, staleWarning: nil, source: "cache")
        }
        guard let record, let mediaType = record.mediaType,
              ManifestDocument.servedTypes.contains(mediaType),
              let bytes = try? await blobs.read(digest, limit: Self.manifestLimit)
        else { return nil }
        janitor?.recordAccess(digest)
        hot.remember(.init(mediaType: mediaType, bytes: bytes), for: digest)
        return Manifest(digest: digest, mediaType: mediaType, bytes: bytes, staleWarning: nil, source: "cache")
    }

    /// A manifest by digest of `name`: from the cache when the repository is known to hold it
    /// (or an upstream confirms it with a free HEAD), else fetched, verified and stored.
    ///
    /// - Parameter confirmedBy: an upstream that just said the repository holds `digest` (its
    ///   tag HEAD named it), so it is neither asked again nor treated as a miss.
    func manifestByDigest(registry: String, name: RepositoryName, digest: Digest, confirmedBy: Upstream.ID? = nil) async throws(RegistryError) -> Manifest {
        if var cached = await cachedManifest(digest) {
            if confirmedBy != nil {
                await links.link(digest, registry: registry, repository: name.value)
                return cached
            }
            if await links.isLinked(digest, registry: registry, repository: name.value) { return cached }
            let confirmation = try await confirm(registry: registry, name: name, ask: .manifest(.digest(digest), method: .HEAD))
            cached.source = "cache"
            cached.skipped = confirmation
            return cached
        }
        if links.isAbsent(digest, registry: registry, repository: name.value) {
            throw RegistryError(.manifestUnknown, "manifest unknown: \(name)@\(digest) (no upstream had it moments ago)")
        }
        return try await flights.run(.manifest(registry: registry, repository: name.value, digest: digest)) { [self] () throws(RegistryError) -> Manifest in
            if let cached = await cachedManifest(digest) {
                if await links.isLinked(digest, registry: registry, repository: name.value) { return cached }
            }
            return try await fetchManifest(registry: registry, name: name, digest: digest, confirmedBy: confirmedBy)
        } reread: { [self] in
            guard let cached = await cachedManifest(digest), await links.isLinked(digest, registry: registry, repository: name.value) else { return nil }
            return cached
        }
    }

    /// Fetches a manifest by digest. Each upstream in order is first asked with a free HEAD
    /// (unless it already confirmed the digest), and only an upstream that has it gets the GET
    /// that spends budget: a digest that exists nowhere never costs a pull.
    private func fetchManifest(registry: String, name: RepositoryName, digest: Digest, confirmedBy: Upstream.ID?) async throws(RegistryError) -> Manifest {
        var walk = pool.walk(registry: registry, ask: .manifest(.digest(digest), method: .HEAD), repository: name)
        while let upstream = await walk.next() {
            if upstream.id != confirmedBy {
                guard let head = await walk.send(to: upstream) else { continue }
                guard head.status == 200 else {
                    await walk.reject(head)
                    continue
                }
                await head.discardBody()
            }
            var get = UpstreamWalk(pool: pool, candidates: [upstream], ask: .manifest(.digest(digest), method: .GET), repository: name)
            let fetched = await verifiedManifest(&get, digest: digest)
            walk.absorb(get)
            guard let (bytes, mediaType) = fetched else { continue }
            await store(manifest: bytes, digest: digest, mediaType: mediaType)
            await links.link(digest, registry: registry, repository: name.value)
            return Manifest(
                digest: digest, mediaType: mediaType, bytes: bytes, staleWarning: nil, source: upstream.name, skipped: walk.note, fetched: true,
                spend: get.spend)
        }
        let error = walk.clientError(notFound: RegistryError(.manifestUnknown, "manifest unknown: \(name)@\(digest)"))
        if error.status == 404 { links.rememberAbsent(digest, registry: registry, repository: name.value) }
        throw error
    }

    /// GETs the manifest from the walk's one upstream (spending its budget) and verifies it.
    private func verifiedManifest(_ walk: inout UpstreamWalk, digest: Digest) async -> (ByteBuffer, String)? {
        guard let upstream = await walk.next(), let response = await walk.send(to: upstream) else { return nil }
        guard response.status == 200 else {
            await walk.reject(response)
            return nil
        }
        guard let bytes = await walk.collect(response, limit: Self.manifestLimit) else { return nil }
        let actual = ContentHasher.digest(of: bytes, as: digest.algorithm)
        guard actual == digest else {
            logger.error("upstream sent a manifest that does not match its digest; not cached", metadata: [
                "upstream": "\(upstream.name)", "digest": "\(digest)", "actual": "\(actual)",
            ])
            walk.fail(upstream, .init(.digestMismatch, "digest mismatch (content hashes to \(actual))"))
            return nil
        }
        guard let mediaType = Self.servedType(response, bytes) else {
            walk.fail(upstream, .init(.badResponse, "not a manifest this gateway serves (Content-Type \(Self.quoted(response.header("content-type"))))"))
            return nil
        }
        return (bytes, mediaType)
    }

    /// The media type to store and serve an upstream's manifest under (nil: refuse it).
    static func servedType(_ response: UpstreamResponse, _ bytes: ByteBuffer) -> String? {
        ManifestDocument.servedType(contentType: response.header("content-type"), body: bytes.readableBytesView)
    }

    static func quoted(_ header: String?) -> String {
        header.map { "'\($0.prefix(80))'" } ?? "none"
    }

    func store(manifest bytes: ByteBuffer, digest: Digest, mediaType: String) async {
        do {
            // The caller verified the bytes against `digest`.
            try await blobs.store(bytes, as: digest, verifiedAs: digest)
            let now = Date()
            try await metadata.saveObject(ObjectRecord(digest: digest, size: UInt64(bytes.readableBytes), mediaType: mediaType, createdAt: now, lastAccess: now))
        } catch {
            // Serving goes on without caching; the next request fetches again.
            if let storage = error as? StorageError { janitor?.storageFailed(storage) }
            logger.error("could not cache manifest", metadata: ["digest": "\(digest)", "error": "\(error)"])
        }
    }
}

extension Duration {
    /// Seconds as a floating-point number.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
