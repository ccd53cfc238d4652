import MirrorGateStorage

/// Whether a call may go to the database now: a half-open circuit breaker, pure so it is
/// tested without a network.
///
/// While the database answers, every call goes. After a call fails because the database
/// could not be reached, one call at a time probes it (with the full timeout) and every other
/// call fails at once with the error that opened the gate, so an outage costs each request
/// one quick failure instead of a timeout. The first probe that succeeds closes it again.
struct AvailabilityGate: Sendable {
    enum Admission: Equatable {
        /// The database is up: run the call.
        case go
        /// The database was down: run the call as the one probe.
        case probe
        /// The database is down and another call is probing: fail with this.
        case failFast(String)
    }

    private enum State: Sendable {
        case up
        case down(reason: String, probing: Bool)
    }

    private var state: State = .up

    var isUp: Bool {
        if case .up = state { return true }
        return false
    }

    /// Why the gate is open, when it is.
    var downReason: String? {
        if case .down(let reason, _) = state { return reason }
        return nil
    }

    mutating func admit() -> Admission {
        switch state {
        case .up:
            return .go
        case .down(let reason, let probing):
            if probing { return .failFast(reason) }
            state = .down(reason: reason, probing: true)
            return .probe
        }
    }

    /// A call reached the database (whatever it answered).
    mutating func reached() {
        state = .up
    }

    /// A call could not reach the database. A probe's failure lets the next call probe.
    mutating func unreachable(_ reason: String) {
        state = .down(reason: reason, probing: false)
    }

    /// A probe ended without an answer either way (it was cancelled): let the next call probe.
    mutating func abandoned(wasProbe: Bool) {
        if wasProbe, case .down(let reason, true) = state { state = .down(reason: reason, probing: false) }
    }
}
