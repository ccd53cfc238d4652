import MirrorGateStorage
import RegistryModel

/// What this replica can serve to the others on its peer endpoint: the blobs it is fetching
/// (read as they arrive, the newest chunk withheld until the digest verifies) and the blobs
/// it has stored (a waiter that asks just after the fetch finished).
public struct PeerBlobs: Sendable {
    let flights: any FlightCoordinator
    let blobs: any BlobStore
    let janitor: CacheJanitor?

    /// Where a peer's request for a blob is answered from.
    public enum Source: Sendable {
        /// Being fetched here now.
        case inFlight(InFlightBlob)
        /// Stored (and leased from eviction while the value lives).
        case stored(CachedBlob)
    }

    /// The blob `digest` fetched through `registry`, nil when this replica has neither.
    public func source(registry: String, digest: Digest) async -> Source? {
        if let flight = flights.runningBlobFlight(.blob(registry: registry, digest: digest)) {
            return .inFlight(flight.blob)
        }
        let lease = janitor?.lease(digest)
        guard janitor == nil || lease != nil, let size = try? await blobs.size(of: digest) else { return nil }
        return .stored(CachedBlob(digest: digest, size: size, store: blobs, lease: lease))
    }
}
