import MirrorGateStorage

/// The decisions of one blob fetch on a replica that shares fetch leases with others: claim the
/// lease, follow the holder's peer stream, wait for a dead holder's lease to run out, take over.
/// Pure: the shell (``BlobFetcher``'s replica path) does the I/O and reports what happened.
///
/// Whatever happens, the machine ends in ``Action/fetch(_:)`` (fetch from the upstreams,
/// continuing at the bytes already spooled), ``Action/serveStored(release:)`` or
/// ``Action/finish``: a waiter is never answered 503, 202 or 429 for want of a holder (dockerd
/// and containerd would then fetch from the upstream themselves). When following keeps failing
/// without progress, it fetches without a lease rather than loop: one extra upstream fetch is
/// cheaper than a client that never gets its blob.
struct ReplicaFetchMachine: Sendable {
    enum Action: Equatable, Sendable {
        /// Claim the lease.
        case claim
        /// Fetch from the upstreams, continuing at the bytes already spooled, heartbeating and
        /// completing `lease` (nil: without a lease; the lease store failed, or following did).
        case fetch(FetchLease?)
        /// The lease was won but the object is stored already: serve it, releasing the lease.
        case serveStored(release: FetchLease)
        /// Stream from the holder's peer endpoint, continuing at the bytes already spooled.
        case follow(LeaseHolder)
        /// Drop what was spooled (it did not verify), then claim again.
        case restartAndClaim
        /// Look up the holder of the lease now (the peer stream broke).
        case inspect
        /// Wait until the holder's lease ends or `timeout` passes.
        case wait(LeaseHolder, timeout: Duration)
        /// The followed bytes verified: done.
        case finish
    }

    /// How following a holder ended.
    enum FollowOutcome: Equatable, Sendable {
        /// Every byte arrived and the digest verified.
        case verified
        /// Every byte arrived, but they do not hash to the digest (a truncated chunked stream).
        case mismatch
        /// The stream failed (refused, reset, stalled, 404); `progressed`: bytes arrived first.
        case broken(progressed: Bool)
    }

    enum Event: Equatable, Sendable {
        /// The claim's answer; `stored`: when won, the object is in storage already.
        case claimed(LeaseClaim, stored: Bool)
        /// The lease store failed (unreachable): per-replica single flight from here on.
        case storeFailed
        case followed(FollowOutcome)
        /// The holder ``Action/inspect`` found (nil: none).
        case inspected(LeaseHolder?)
        /// The holder after ``Action/wait(_:timeout:)`` (nil: none; the same generation: timed out).
        case waited(LeaseHolder?)
    }

    /// Follow attempts in a row without a byte of progress before fetching without a lease.
    let maxFruitlessFollows: Int
    /// Added to a holder's remaining lease time when waiting for it to run out (the store polls).
    let waitGrace: Duration

    private(set) var following: LeaseHolder?
    private var lastProgressed = false
    private var fruitless = 0

    init(maxFruitlessFollows: Int = 8, waitGrace: Duration = .seconds(1)) {
        self.maxFruitlessFollows = maxFruitlessFollows
        self.waitGrace = waitGrace
    }

    /// The first action.
    var start: Action { .claim }

    mutating func next(_ event: Event) -> Action {
        switch event {
        case .claimed(.won(let lease), let stored):
            following = nil
            return stored ? .serveStored(release: lease) : .fetch(lease)
        case .claimed(.held(let holder), _):
            return follow(holder)
        case .storeFailed:
            return .fetch(nil)
        case .followed(.verified):
            return .finish
        case .followed(.mismatch):
            following = nil
            fruitless += 1
            return fruitless >= maxFruitlessFollows ? .fetch(nil) : .restartAndClaim
        case .followed(.broken(let progressed)):
            lastProgressed = progressed
            if progressed { fruitless = 0 } else { fruitless += 1 }
            return .inspect
        case .inspected(nil), .waited(nil):
            following = nil
            return .claim
        case .inspected(let holder?):
            if let following, holder.generation == following.generation, !lastProgressed {
                // The same holder, and its stream gave nothing: it may be dead (kill -9) with
                // its lease still running. Wait for the lease instead of hammering the port.
                return .wait(holder, timeout: holder.remaining + waitGrace)
            }
            return follow(holder)
        case .waited(let holder?):
            // Still held after the wait (a live holder whose port failed once, or a new one).
            return follow(holder)
        }
    }

    private mutating func follow(_ holder: LeaseHolder) -> Action {
        if fruitless >= maxFruitlessFollows { return .fetch(nil) }
        following = holder
        lastProgressed = false
        return .follow(holder)
    }
}
