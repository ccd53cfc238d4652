import Foundation
import Logging
import MirrorGateConfig
import MirrorGatePostgres
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
    /// Cross-replica leases when the metadata is shared (nil: one replica, SQLite).
    public var leases: (any FetchLeases)? { cache.shared?.leases }
    /// This process as the leases name it (nil: one replica).
    public var owner: LeaseOwner? { cache.shared?.owner }
    /// The shared database (nil: one replica), for readiness and status.
    public var database: PostgresDatabase? { cache.shared?.database }
    let ledger: any BudgetLedger
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
        /// The database shared with other replicas (`metadata.backend: postgres`).
        public let shared: SharedState?

        /// Closes the store's connections (the S3 client's pool, the database's), giving up
        /// what this replica holds in the database first.
        public func shutdown() async throws {
            await shared?.close()
            try await s3?.shutdown()
        }
    }

    /// Opens the cache alone (`mirrorgate gc` uses it next to a running gateway, with a `role`).
    ///
    /// Metadata is SQLite inside `storage.path`, or the shared PostgreSQL database
    /// (`metadata.backend: postgres`). Reconciliation differs: a file system of one gateway is
    /// listed and reconciled here, before anything is served; a bucket, or a file system other
    /// replicas write at the same time, is reconciled page by page by the janitor once it runs
    /// (``CacheJanitor/reconcileInPages()`` re-checks what it finds, so a replica's commit
    /// racing the pass is never dropped), unless `reconcileNow` (`mirrorgate gc`), which runs
    /// that pass here.
    ///
    /// - Throws: in S3 mode, ``S3BlobStore/StartupError`` naming what failed when the endpoint
    ///   does not answer, the bucket does not exist or the credentials are refused; with
    ///   PostgreSQL, ``StorageError`` naming the database and why it cannot be used.
    public static func openCache(_ config: GatewayConfig, role: String? = nil, logger: Logger, reconcileNow: Bool = false) async throws -> Cache {
        let shared: SharedState? = config.metadata.backend == .postgres ? try await SharedState.open(config, role: role, logger: logger) : nil
        do {
            return try await openCache(config, shared: shared, logger: logger, reconcileNow: reconcileNow)
        } catch {
            await shared?.close()
            throw error
        }
    }

    private static func openCache(_ config: GatewayConfig, shared: SharedState?, logger: Logger, reconcileNow: Bool) async throws -> Cache {
        let leadership: any JanitorLeadership = shared?.leadership ?? SoleJanitor()
        switch config.storage.backend {
        case .filesystem:
            let blobs = try FileBlobStore(
                root: config.storage.path, spoolName: shared.map { _ in SharedState.spoolName(config, role: nil) }, logger: logger)
            if let shared {
                let janitor = CacheJanitor(
                    blobs: blobs, metadata: shared.metadata, maxSize: config.storage.maxSize, reconcileInBackground: !reconcileNow,
                    leadership: leadership, logger: logger)
                if reconcileNow { try await janitor.reconcileInPages() }
                return Cache(blobs: blobs, metadata: shared.metadata, janitor: janitor, pullLedger: shared.metadata, s3: nil, shared: shared)
            }
            let metadata = try SQLiteMetadataStore(path: blobs.root + "/metadata.sqlite")
            let janitor = CacheJanitor(blobs: blobs, metadata: metadata, maxSize: config.storage.maxSize, logger: logger)
            try await janitor.reconcile()
            return Cache(blobs: blobs, metadata: metadata, janitor: janitor, pullLedger: metadata, s3: nil, shared: nil)
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
                let metadata: any MetadataStore & PullLedgerStore
                if let shared { metadata = shared.metadata } else { metadata = try SQLiteMetadataStore(path: root + "/metadata.sqlite") }
                let janitor = CacheJanitor(
                    blobs: blobs, metadata: metadata, maxSize: config.storage.maxSize, reconcileInBackground: !reconcileNow,
                    leadership: leadership, logger: logger)
                if reconcileNow { try await janitor.reconcileInPages() }
                logger.info("blobs are stored in S3", metadata: [
                    "bucket": "\(s3.bucket)", "endpoint": "\(s3.endpoint)", "prefix": "\(s3.prefix)", "redirect": "\(s3.redirect)",
                ])
                return Cache(blobs: blobs, metadata: metadata, janitor: janitor, pullLedger: metadata, s3: blobs.client, shared: shared)
            } catch {
                try? await blobs.client.shutdown()
                throw error
            }
        }
    }

    /// Builds every part from `config`.
    public static func make(_ config: GatewayConfig, logger: Logger) async throws -> GatewayComponents {
        let cache = try await openCache(config, logger: logger)
        let ledger: any BudgetLedger
        if let shared = cache.shared {
            let pg = PostgresBudgetLedger(limits: BudgetKey.limits(config), database: shared.database, replica: shared.owner.id, logger: logger)
            try? await pg.refreshBlocks()
            ledger = pg
        } else {
            let local = LocalBudgetLedger(limits: BudgetKey.limits(config), journal: cache.metadata, logger: logger)
            await local.load()
            ledger = local
        }
        let client = UpstreamClient(timeout: config.health.timeout, logger: logger)
        let pool = UpstreamPool(
            client: client, router: UpstreamRouter(config: config), health: UpstreamHealth(config: config), ledger: ledger, logger: logger)
        let flights = Self.flights(config, leases: cache.shared?.leases, owner: cache.shared?.owner, logger: logger)
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
            prober: prober, flights: flights, service: service, ledger: ledger, client: client, cache: cache)
    }

    /// What this replica serves without right now, for `/readyz` (empty: nothing is missing).
    public var degradations: [String] {
        guard let database = cache.shared?.database else { return [] }
        let health = database.health
        guard !health.reachable else { return [] }
        return [
            "shared database unreachable (\(health.reason ?? "no answer")): cached content and tags this replica knows are served; no manifest GET is spent until it answers again"
        ]
    }

    /// The long-running parts, in start order (they stop in reverse): the janitor outlives
    /// the fetcher, which outlives the requests that follow its fetches.
    /// With a shared database its budget ledger comes first: it keeps the copy of the shared
    /// blocks fresh while everything after it runs. (The database's pool runs outside the
    /// group, started by ``openCache(_:role:logger:reconcileNow:)`` and stopped by
    /// ``shutdown()``, so it outlives every service.)
    public var services: [any Service] {
        var services: [any Service] = []
        if let shared = ledger as? PostgresBudgetLedger { services.append(shared) }
        return services + [janitor, fetcher, flights, prober]
    }

    /// Closes what outlives the service group (the upstream client's and the bucket's
    /// connection pools).
    public func shutdown() async throws {
        try await client.shutdown()
        try await flights.cluster?.peers.shutdown()
        try await cache.shutdown()
    }
}
