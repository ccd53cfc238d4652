import MirrorGateUpstream
import RegistryModel

/// What is being fetched once for everyone who asks at the same time.
enum FlightKey: Hashable, Sendable, CustomStringConvertible {
    /// A tag being revalidated (one HEAD).
    case tag(registry: String, repository: String, tag: String)
    /// A manifest being fetched (one GET: one spend).
    case manifest(registry: String, repository: String, digest: Digest)
    /// A blob being fetched, per registry (a request through one registry never joins, and is
    /// never failed by, a fetch through another's upstreams).
    case blob(registry: String, digest: Digest)

    var description: String {
        switch self {
        case .tag(let registry, let repository, let tag): "\(registry)/\(repository):\(tag)"
        case .manifest(let registry, let repository, let digest): "\(registry)/\(repository)@\(digest)"
        case .blob(let registry, let digest): "\(registry)@\(digest)"
        }
    }
}

/// Single flight for manifests, tags and blobs: concurrent requests for one key share one
/// upstream exchange. ``LocalFlights`` is the in-process implementation; a shared one adds
/// leases so that replicas sharing a database also share flights.
protocol FlightCoordinator: Sendable {
    /// Runs `work` once for everyone asking for `key` meanwhile; all get its result.
    ///
    /// - Parameter reread: what a caller that waited for somebody else's flight elsewhere
    ///   (another replica) reads instead of the shared result (the stored manifest); when it
    ///   finds nothing, that caller runs `work` itself.
    func run<Value: Sendable>(
        _ key: FlightKey,
        work: @escaping @Sendable () async throws(RegistryError) -> Value,
        reread: @escaping @Sendable () async -> Value?
    ) async throws(RegistryError) -> Value

    /// Runs `work` within the gateway's lifetime with nobody waiting for it (a background tag
    /// revalidation). False, and `work` not run, once the gateway is stopping.
    @discardableResult
    func background(_ work: @escaping @Sendable () async -> Void) -> Bool

    /// The blob fetch running for `key`, or a new one from `start` (true: started now; the
    /// caller submits it). Blob flights live as long as their fetch, until ``endBlobFlight(_:)``.
    func blobFlight(_ key: FlightKey, start: () -> BlobFetcher.Flight) -> (flight: BlobFetcher.Flight, started: Bool)
    /// The fetch of `key` ended; later requests start a new one.
    func endBlobFlight(_ key: FlightKey)
    /// Whether a blob fetch runs for `key` (readers can still join it).
    func isBlobInFlight(_ key: FlightKey) -> Bool
    /// The blob fetch running for `key`, if any (the peer endpoint serves it to other replicas).
    func runningBlobFlight(_ key: FlightKey) -> BlobFetcher.Flight?
    /// Every blob fetch running now.
    var blobFlights: [BlobFetcher.Flight] { get }
    /// The replicas this one shares blob fetches with (nil: none; fetch from the upstreams).
    var cluster: ReplicaCluster? { get }
}

extension FlightCoordinator {
    var cluster: ReplicaCluster? { nil }
}
