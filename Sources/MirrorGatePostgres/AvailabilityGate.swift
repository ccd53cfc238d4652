/// Whether a call may go to the database now: a half-open circuit breaker, pure (the caller
/// passes the time) so it is tested without a network or a clock.
///
/// While the database answers, every call goes. After a call fails because the database could
/// not be reached, the calls of the next `cooldown` fail at once with the error that opened the
/// gate; then one call at a time probes it, and every other call keeps failing at once. So an
/// outage costs a request one quick failure instead of a timeout. The first probe that
/// reaches the database closes the gate again.
struct AvailabilityGate: Sendable {
    enum Admission: Equatable {
        /// The database is up: run the call.
        case go
        /// The database was down: run the call as the one probe.
        case probe
        /// The database is down and another call probes, or the cooldown runs: fail with this.
        case failFast(String)
    }

    private enum State: Sendable {
        case up
        case down(reason: String, probing: Bool, retryAt: ContinuousClock.Instant)
    }

    let cooldown: Duration
    private var state: State = .up

    init(cooldown: Duration) {
        self.cooldown = cooldown
    }

    var isUp: Bool {
        if case .up = state { return true }
        return false
    }

    /// Why the gate is open, when it is.
    var downReason: String? {
        if case .down(let reason, _, _) = state { return reason }
        return nil
    }

    mutating func admit(now: ContinuousClock.Instant) -> Admission {
        switch state {
        case .up:
            return .go
        case .down(let reason, let probing, let retryAt):
            if probing || now < retryAt { return .failFast(reason) }
            state = .down(reason: reason, probing: true, retryAt: retryAt)
            return .probe
        }
    }

    /// A call reached the database (whatever it answered).
    mutating func reached() {
        state = .up
    }

    /// A call could not reach the database: fail fast for the cooldown, then probe again.
    mutating func unreachable(_ reason: String, now: ContinuousClock.Instant) {
        state = .down(reason: reason, probing: false, retryAt: now + cooldown)
    }

    /// A probe ended without an answer either way (it was cancelled): let the next call probe.
    mutating func abandoned(wasProbe: Bool) {
        if wasProbe, case .down(let reason, true, let retryAt) = state { state = .down(reason: reason, probing: false, retryAt: retryAt) }
    }
}
