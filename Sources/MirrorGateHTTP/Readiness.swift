import Synchronization

/// Whether `/readyz` should tell load balancers to send this gateway new clients.
public final class Readiness: Sendable {
    private let stopping = Mutex<String?>(nil)
    private let degradations: @Sendable () -> [String]

    /// - Parameter degradations: what the gateway serves without (a shared database that is
    ///   down), said by `/readyz` while it stays ready: taking the replica out of the Service
    ///   would not bring the database back, and the replica still serves its cache.
    public init(degradations: @escaping @Sendable () -> [String] = { [] }) {
        self.degradations = degradations
    }

    /// What the gateway serves without right now (empty: nothing is missing).
    public var degraded: [String] { degradations() }

    /// From now on `/readyz` answers 503 with `reason`.
    public func stop(_ reason: String) {
        stopping.withLock { $0 = reason }
    }

    /// Why the gateway is not taking new clients, if it is not.
    public var notReadyReason: String? { stopping.withLock { $0 } }
}
