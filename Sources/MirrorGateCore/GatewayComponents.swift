import Foundation
import Logging
import MirrorGateConfig
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
    let flights: LocalFlights
    /// The pull logic the HTTP front serves.
    public let service: PullService
    private let client: UpstreamClient

    /// The cache: blob store and metadata, reconciled after a crash (files and rows may
    /// disagree after `kill -9`), with the janitor that keeps it within `storage.max_size`.
    public struct Cache: Sendable {
        public let blobs: any BlobStore
        public let metadata: any MetadataStore
        public let janitor: CacheJanitor
    }

    /// Opens the cache alone (`mirrorgate gc` uses it next to a running gateway).
    public static func openCache(_ config: GatewayConfig, logger: Logger) async throws -> Cache {
        let blobs = try FileBlobStore(root: config.storage.path, logger: logger)
        let metadata = try SQLiteMetadataStore(path: blobs.root + "/metadata.sqlite")
        let janitor = CacheJanitor(blobs: blobs, metadata: metadata, maxSize: config.storage.maxSize, logger: logger)
        try await janitor.reconcile()
        return Cache(blobs: blobs, metadata: metadata, janitor: janitor)
    }

    /// Builds every part from `config`.
    public static func make(_ config: GatewayConfig, logger: Logger) async throws -> GatewayComponents {
        let cache = try await openCache(config, logger: logger)
        let ledger = LocalBudgetLedger(limits: BudgetKey.limits(config), journal: cache.metadata, logger: logger)
        await ledger.load()
        let client = UpstreamClient(timeout: config.health.timeout, logger: logger)
        let pool = UpstreamPool(
            client: client, router: UpstreamRouter(config: config), health: UpstreamHealth(config: config), ledger: ledger, logger: logger)
        let flights = LocalFlights()
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
            prober: prober, flights: flights, service: service, client: client)
    }

    /// The long-running parts, in start order (they stop in reverse): the janitor outlives
    /// the fetcher, which outlives the requests that follow its fetches.
    public var services: [any Service] { [janitor, fetcher, flights, prober] }

    /// Closes what outlives the service group (the upstream client's connection pools).
    public func shutdown() async throws {
        try await client.shutdown()
    }
}
