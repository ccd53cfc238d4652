import Logging
import MirrorGateStorage
import RegistryModel
import ServiceLifecycle

/// What a replica needs to share fetches with the others: the lease store, its own identity
/// (its advertise URL is where the others stream from it) and the client it streams with.
struct ReplicaCluster: Sendable {
    let leases: any FetchLeases
    let owner: LeaseOwner
    let peers: PeerClient
    /// A lease's life without a heartbeat: how long a dead holder (kill -9) blocks its key.
    var ttl: Duration = .seconds(20)
    /// How often a holder renews its lease (and reports progress).
    var heartbeat: Duration = .seconds(5)
}

/// ``FlightCoordinator`` of a replica sharing a lease store with others: the per-process
/// flights of ``LocalFlights`` first (one request per key leaves this process), then a lease
/// per key across processes.
///
/// - Manifests: the lease holder spends the one GET; others wait for its lease to end and
///   re-read the stored manifest (`reread`), claiming it themselves only when nothing was
///   stored (the holder failed).
/// - Blobs: the flight map stays local; ``BlobFetcher`` asks ``cluster`` and claims, follows
///   or takes over the fetch itself (``ReplicaFetchMachine``).
/// - Tags: local only (a HEAD is free).
///
/// When the lease store fails, every decision falls back to per-process single flight.
final class SharedFlights: FlightCoordinator, Service {
    let local = LocalFlights()
    let cluster: ReplicaCluster?
    private let logger: Logger

    init(cluster: ReplicaCluster, logger: Logger) {
        self.cluster = cluster
        self.logger = logger
    }

    /// The flights' task group. The peer client is closed by ``GatewayComponents/shutdown()``,
    /// after the fetcher (which stops after this service) has no more fetches following a peer.
    func run() async throws {
        try await local.run()
    }

    func run<Value: Sendable>(
        _ key: FlightKey,
        work: @escaping @Sendable () async throws(RegistryError) -> Value,
        reread: @escaping @Sendable () async -> Value?
    ) async throws(RegistryError) -> Value {
        guard case .manifest(let registry, let repository, let digest) = key, let cluster else {
            return try await local.run(key, work: work, reread: reread)
        }
        let leaseKey = LeaseKey.manifest(registry: registry, repository: repository, digest: digest)
        return try await local.run(key, work: { [logger] () throws(RegistryError) -> Value in
            var waits = 0
            while true {
                let claim: LeaseClaim
                do {
                    claim = try await cluster.leases.claim(leaseKey, owner: cluster.owner, ttl: cluster.ttl)
                } catch {
                    logger.warning("fetch lease store failed; this replica fetches the manifest alone", metadata: ["key": "\(leaseKey)", "error": "\(error)"])
                    return try await work()
                }
                switch claim {
                case .won(let lease):
                    // A holder that finished between our read and our claim stored it already.
                    if waits > 0, let stored = await reread() {
                        try? await cluster.leases.release(lease)
                        return stored
                    }
                    do throws(RegistryError) {
                        let value = try await work()
                        try? await cluster.leases.release(lease)
                        return value
                    } catch {
                        try? await cluster.leases.release(lease)
                        throw error
                    }
                case .held(let holder):
                    waits += 1
                    do {
                        _ = try await cluster.leases.waitForRelease(leaseKey, generation: holder.generation, timeout: holder.remaining + .seconds(1))
                    } catch {
                        return try await work()
                    }
                    if let stored = await reread() { return stored }
                    // Nothing stored: the holder failed or is still at it; claim again.
                }
            }
        }, reread: reread)
    }

    @discardableResult
    func background(_ work: @escaping @Sendable () async -> Void) -> Bool {
        local.background(work)
    }

    func blobFlight(_ key: FlightKey, start: () -> BlobFetcher.Flight) -> (flight: BlobFetcher.Flight, started: Bool) {
        local.blobFlight(key, start: start)
    }

    func endBlobFlight(_ key: FlightKey) {
        local.endBlobFlight(key)
    }

    func isBlobInFlight(_ key: FlightKey) -> Bool {
        local.isBlobInFlight(key)
    }

    func runningBlobFlight(_ key: FlightKey) -> BlobFetcher.Flight? {
        local.runningBlobFlight(key)
    }

    var blobFlights: [BlobFetcher.Flight] { local.blobFlights }
}
