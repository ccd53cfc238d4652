import Synchronization

/// Whether `/readyz` should tell load balancers to send this gateway new clients.
public final class Readiness: Sendable {
    private let stopping = Mutex<String?>(nil)

    public init() {}

    /// From now on `/readyz` answers 503 with `reason`.
    public func stop(_ reason: String) {
        stopping.withLock { $0 = reason }
    }

    /// Why the gateway is not taking new clients, if it is not.
    public var notReadyReason: String? { stopping.withLock { $0 } }
}
