import Foundation

extension PullService {
    /// A snapshot for the status page, `status.json`, `mirrorgate status` and the metric gauges.
    public func status(now: Date = Date()) async -> GatewayStatus {
        let usage = (try? await metadata.usage()) ?? (objects: 0, bytes: 0)
        let flights = fetcher.singleFlight
        let unwritable = janitor?.unwritableReason
        let cache = GatewayStatus.Cache(
            sizeBytes: usage.bytes,
            maxSizeBytes: config.storage.maxSize,
            objects: usage.objects,
            writable: unwritable == nil,
            unwritableReason: unwritable,
            manifestHits: activity.count(.manifest, .hit) + activity.count(.manifest, .stale)
                + activity.count(.manifest, .hitRevalidating) + activity.count(.manifest, .revalidated),
            manifestMisses: activity.count(.manifest, .miss),
            blobHits: activity.count(.blob, .hit),
            blobMisses: activity.count(.blob, .miss) + activity.count(.blob, .passThrough))
        return GatewayStatus(
            generatedAt: now,
            startedAt: activity.startedAt,
            registries: await pool.statusReport().registries,
            cache: cache,
            singleFlight: .init(blobFetches: flights.fetches, blobWaiters: flights.waiters),
            tagRevalidations: revalidations.report,
            recentFailovers: activity.recentFailovers)
    }
}
