import Logging
import MirrorGateConfig
import MirrorGateStorage
import ServiceLifecycle

extension GatewayComponents {
    /// Single flight per process, or across replicas when they share leases and `cluster`
    /// says how they reach each other.
    static func flights(_ config: GatewayConfig, leases: (any FetchLeases)?, owner: LeaseOwner?, logger: Logger) -> any FlightCoordinator & Service {
        guard let cluster = config.cluster, let leases, let owner else { return LocalFlights() }
        // The head comes once the holder's upstream answered; its body may pause no longer
        // than an upstream's may (`health.timeout`) before the lease is looked at again.
        let peers = PeerClient(token: cluster.peerToken.value, headTimeout: config.health.timeout * 2, readTimeout: config.health.timeout)
        return SharedFlights(cluster: ReplicaCluster(leases: leases, owner: owner, peers: peers), logger: logger)
    }

    /// What the peer listener (`cluster.peer_listen`) serves to other replicas.
    public var peerBlobs: PeerBlobs {
        PeerBlobs(flights: flights, blobs: blobs, janitor: janitor)
    }
}
