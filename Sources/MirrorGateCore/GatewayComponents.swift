import Foundation
import Logging
import MirrorGateConfig
import MirrorGateS3
import MirrorGateStorage
import MirrorGateUpstream
import ServiceLifecycle

/// The gateway built from its configuration: the one place that knows which implementation
/// sits behind each seam (blob store, metadata, budget ledger) and how the parts are joined.
/// Everything a part needs is passed at construction; nothing is installed afterwards.
public struct GatewayComponents: Sendable {
    public let config: GatewayConfig
    let blobs: any BlobStore
    let metadata: any MetadataStore
    let janitor: CacheJanitor
    let pool: UpstreamPool
    let fetcher: BlobFetcher
    let prober: HealthProber
    let flights: any FlightCoordinator & Service
    /// The pull logic the HTTP front serves.
    public let service: PullService
    /// Where the pull ledger is kept: the metadata store.
    public var pullLedgerStore: any PullLedgerStore { cache.pullLedger }
    private let client: UpstreamClient
    private let cache: Cache

    /// The cache: blob store and metadata, reconciled after a crash (files and rows may
    /// disagree after `kill -9`), with the janitor that keeps it within `storage.max_size`.
    public struct Cache: Sendable {
        public let blobs: any BlobStore
        public let metadata: any MetadataStore
        public let janitor: CacheJanitor
        /// The pull ledger's store, in the same database as the rest of the metadata.
        public let pullLedger: any PullLedgerStore
        /// The bucket's client in S3 mode, closed by ``shutdown()``.
        let s3: S3Client?

        /// Closes the store's connections (the S3 client's pool).
        public func shutdown() async throws {
            try await s3?.shutdown()
        }
    }

    /// Opens the cache alone (`mirrorgate gc` uses it next to a running gateway).
    ///
    /// Metadata is SQLite inside `storage.path` for either backend. Reconciliation differs:
    /// a file system is listed and reconciled here, before anything is served; a bucket is
    /// reconciled page by page by the janitor once it runs (``CacheJanitor/reconcileInPages()``
    /// says why), unless `reconcileNow` (`mirrorgate gc`), which runs that pass here.
    ///
    /// - Throws: in S3 mode, ``S3BlobStore/StartupError`` naming what failed when the endpoint
    ///   does not answer, the bucket does not exist or the credentials are refused.
    public static func openCache(_ config: GatewayConfig, logger: Logger, reconcileNow: Bool = false) async throws -> Cache {
        switch config.storage.backend {
        case .filesystem:
            let blobs = try FileBlobStore(root: config.storage.path, logger: logger)
            let metadata = try SQLiteMetadataStore(path: blobs.root + "/metadata.sqlite")
            let janitor = CacheJanitor(blobs: blobs, metadata: metadata, maxSize: config.storage.maxSize, logger: logger)
            try await janitor.reconcile()
            return Cache(blobs: blobs, metadata: metadata, janitor: janitor, pullLedger: metadata, s3: nil)
        case .s3:
            guard let s3 = config.storage.s3 else { throw S3BlobStore.StartupError(description: "storage.s3: required when storage.backend is s3") }
            let root = URL(fileURLWithPath: config.storage.path).standardizedFileURL.path
            let blobs = try await S3BlobStore.open(
                configuration: S3Configuration(
                    endpoint: s3.endpoint, region: s3.region, bucket: s3.bucket, prefix: s3.prefix,
                    addressing: s3.pathStyle ? .pathStyle : .virtualHost, accessKeyID: s3.accessKeyID,
                    secretAccessKey: s3.secretAccessKey.value),
                spoolDirectory: root + "/tmp", redirects: s3.redirect, logger: logger)
            do {
                let metadata = try SQLiteMetadataStore(path: root + "/metadata.sqlite")
                let janitor = CacheJanitor(
                    blobs: blobs, metadata: metadata, maxSize: config.storage.maxSize, reconcileInBackground: !reconcileNow, logger: logger)
                if reconcileNow { try await janitor.reconcileInPages() }
                logger.info("blobs are stored in S3", metadata: [
                    "bucket": "\(s3.bucket)", "endpoint": "\(s3.endpoint)", "prefix": "\(s3.prefix)", "redirect": "\(s3.redirect)",
                ])
                return Cache(blobs: blobs, metadata: metadata, janitor: janitor, pullLedger: metadata, s3: blobs.client)
            } catch {
                try? await blobs.client.shutdown()
                throw error
            }
        }
    }

    /// Builds every part from `config`.
    public static func make(_ config: GatewayConfig, logger: Logger) async throws -> GatewayComponents {
        let cache = try await openCache(config, logger: logger)
        let ledger = LocalBudgetLedger(limits: BudgetKey.limits(config), journal: cache.metadata, logger: logger)
        await ledger.load()
        let client = UpstreamClient(timeout: config.health.timeout, logger: logger)
        let pool = UpstreamPool(
            client: client, router: UpstreamRouter(config: config), health: UpstreamHealth(config: config), ledger: ledger, logger: logger)
        let flights = Self.flights(config, leases: nil, owner: nil, logger: logger)
        let fetcher = BlobFetcher(
            pool: pool, blobs: cache.blobs, metadata: cache.metadata,
            limits: .init(
                stallTimeout: config.health.timeout, maxConcurrentFetches: config.limits.maxConcurrentFetches,
                maxBlobSize: config.storage.maxBlobSize, minRate: config.limits.minFetchRate, rateGrace: config.limits.fetchRateGrace),
            events: cache.janitor, flights: flights, logger: logger)
        let prober = HealthProber(pool: pool, interval: config.health.interval, logger: logger)
        let service = PullService(config: config, blobs: cache.blobs, metadata: cache.metadata, fetcher: fetcher, janitor: cache.janitor, logger: logger)
        return GatewayComponents(
            config: config, blobs: cache.blobs, metadata: cache.metadata, janitor: cache.janitor, pool: pool, fetcher: fetcher,
            prober: prober, flights: flights, service: service, client: client, cache: cache)
    }

    /// The long-running parts, in start order (they stop in reverse): the janitor outlives
    /// the fetcher, which outlives the requests that follow its fetches.
    public var services: [any Service] { [janitor, fetcher, flights, prober] }

    /// Closes what outlives the service group (the upstream client's and the bucket's
    /// connection pools).
    public func shutdown() async throws {
        try await client.shutdown()
        try await cache.shutdown()
    }
}
