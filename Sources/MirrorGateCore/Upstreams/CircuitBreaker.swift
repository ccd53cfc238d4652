import Synchronization

/// A passive circuit breaker for one upstream.
///
/// `failureThreshold` consecutive failures open it; while open, requests skip the upstream at
/// no network cost. After a cool-down (doubling on every re-open, capped), the next request or
/// probe is let through as the single trial (half-open): success closes the circuit, failure
/// re-opens it with a longer cool-down.
final class CircuitBreaker: Sendable {
    /// What the breaker is doing, for status output.
    enum Phase: String, Sendable {
        case closed
        case open
        case halfOpen = "half-open"
    }

    struct State {
        var phase: Phase = .closed
        var consecutiveFailures = 0
        /// Times opened in a row without a success in between.
        var openings = 0
        var openUntil: ContinuousClock.Instant = .now
        var trialStarted: ContinuousClock.Instant = .now
        var lastError: String?
    }

    private let state = Mutex(State())
    let failureThreshold: Int
    let baseCooldown: Duration
    let maxCooldown: Duration
    /// A trial that never reports back (its task was cancelled) frees the slot after this.
    let trialTimeout: Duration

    init(failureThreshold: Int, baseCooldown: Duration, maxCooldown: Duration, trialTimeout: Duration) {
        self.failureThreshold = failureThreshold
        self.baseCooldown = baseCooldown
        self.maxCooldown = maxCooldown
        self.trialTimeout = trialTimeout
    }

    /// Whether a request may go to the upstream now. In the open state after the cool-down,
    /// the first caller becomes the trial and others are refused until it reports.
    func admit(now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { s in
            switch s.phase {
            case .closed:
                return true
            case .open:
                guard now >= s.openUntil else { return false }
                s.phase = .halfOpen
                s.trialStarted = now
                return true
            case .halfOpen:
                if now - s.trialStarted > trialTimeout {
                    s.trialStarted = now
                    return true
                }
                return false
            }
        }
    }

    /// `true` when a request would be admitted, without taking the trial slot.
    func isAvailable(now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { s in
            switch s.phase {
            case .closed: true
            case .open: now >= s.openUntil
            case .halfOpen: now - s.trialStarted > trialTimeout
            }
        }
    }

    func recordSuccess() {
        state.withLock { s in
            s.phase = .closed
            s.consecutiveFailures = 0
            s.openings = 0
        }
    }

    /// Counts a failure; returns `true` when this failure opened the circuit.
    @discardableResult
    func recordFailure(_ reason: String, now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { s in
            s.lastError = reason
            s.consecutiveFailures += 1
            switch s.phase {
            case .closed:
                guard s.consecutiveFailures >= failureThreshold else { return false }
            case .halfOpen:
                break
            case .open:
                return false
            }
            s.phase = .open
            s.openUntil = now + cooldown(openings: s.openings)
            s.openings += 1
            return true
        }
    }

    func cooldown(openings: Int) -> Duration {
        var d = baseCooldown
        for _ in 0..<min(openings, 20) {
            d = d * 2
            if d >= maxCooldown { return maxCooldown }
        }
        return min(d, maxCooldown)
    }

    /// Current phase, consecutive failures and last error.
    var snapshot: (phase: Phase, consecutiveFailures: Int, lastError: String?) {
        state.withLock { s in
            // An open circuit whose cool-down passed is reported as open until a trial runs.
            (s.phase, s.consecutiveFailures, s.lastError)
        }
    }
}
