import Logging
import MirrorGateStorage
import Synchronization

/// One eviction janitor at a time across replicas: leadership is a lease row
/// (``LeaseKey/janitor``) renewed on every ``mayEvict()``. A leader that dies stops renewing;
/// within `ttl` another replica's next pass claims it (with a higher generation, so the old
/// leader, should it come back, is fenced out).
///
/// A lease rather than a session advisory lock: it needs no connection kept out of the pool,
/// works through a transaction-mode pooler, and its expiry does not depend on TCP keepalive.
public final class PostgresJanitorLeadership: JanitorLeadership {
    let leases: PostgresFetchLeases
    let owner: LeaseOwner
    let ttl: Duration
    let logger: Logger
    private let held = Mutex<FetchLease?>(nil)

    /// - Parameter ttl: how long leadership lasts without a pass: a few janitor intervals.
    public init(leases: PostgresFetchLeases, owner: LeaseOwner, ttl: Duration, logger: Logger) {
        self.leases = leases
        self.owner = owner
        self.ttl = ttl
        self.logger = logger
    }

    public func mayEvict() async -> Bool {
        if let lease = held.withLock({ $0 }) {
            do {
                if try await leases.heartbeat(lease, ttl: ttl, size: nil, bytesDone: 0) { return true }
                logger.notice("another replica took over cache eviction", metadata: ["generation": "\(lease.generation)"])
            } catch {
                // Cannot renew: cannot be sure no other replica leads after the TTL. Step down.
                logger.warning("cache eviction paused: leadership cannot be renewed", metadata: ["error": "\(error)"])
            }
            held.withLock { $0 = nil }
            return false
        }
        do {
            switch try await leases.claim(.janitor, owner: owner, ttl: ttl) {
            case .won(let lease):
                held.withLock { $0 = lease }
                logger.notice("this replica runs cache eviction", metadata: ["generation": "\(lease.generation)"])
                return true
            case .held(let holder):
                return holder.owner == owner.id
            }
        } catch {
            return false
        }
    }

    /// Gives leadership up (at shutdown), so another replica can lead at its next pass.
    public func resign() async {
        guard let lease = held.withLock({ s -> FetchLease? in defer { s = nil }; return s }) else { return }
        try? await leases.release(lease)
    }
}

extension LeaseKey {
    /// The lease of the replica that runs cache eviction.
    public static let janitor = LeaseKey("janitor:eviction")
}
