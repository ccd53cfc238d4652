import Synchronization

/// The slots of `limits.max_concurrent_fetches`, shared fairly between registries.
///
/// A fetch's upstreams follow from its registry, so fairness is per registry: one registry
/// (its upstreams) may hold at most three quarters of the slots, so whatever one slow or
/// hostile upstream does, fetches through other registries always find a slot at once; and
/// a freed slot goes to the waiting registry that holds the fewest, oldest request first.
/// Together with the minimum fetch rate (a drip-fed fetch is given up after the grace) no
/// upstream can starve the others.
///
/// ``State`` is the pure decision (unit-tested); ``acquire(_:)`` and ``release(_:)`` are the
/// shell that suspends and resumes fetches.
final class FetchSlots: Sendable {
    struct State {
        let capacity: Int
        /// The most slots one key may hold.
        let perKeyCap: Int
        private(set) var active: [String: Int] = [:]
        private(set) var total = 0
        /// Waiting tickets per key, oldest first, and the order keys first waited in.
        private(set) var waiting: [String: [Int]] = [:]
        private var keyOrder: [String] = []

        init(capacity: Int) {
            self.capacity = max(1, capacity)
            self.perKeyCap = max(1, (max(1, capacity) * 3) / 4)
        }

        func canRun(_ key: String) -> Bool {
            total < capacity && active[key, default: 0] < perKeyCap
        }

        /// A fetch for `key` asks for a slot: true when it runs now, else `ticket` waits.
        mutating func request(_ key: String, ticket: Int) -> Bool {
            if canRun(key), waiting[key, default: []].isEmpty {
                take(key)
                return true
            }
            if waiting[key] == nil { keyOrder.append(key) }
            waiting[key, default: []].append(ticket)
            return false
        }

        /// A waiting ticket gives up (its task was cancelled); true when it was still waiting.
        mutating func withdraw(_ key: String, ticket: Int) -> Bool {
            guard let index = waiting[key]?.firstIndex(of: ticket) else { return false }
            waiting[key]!.remove(at: index)
            if waiting[key]!.isEmpty {
                waiting[key] = nil
                keyOrder.removeAll { $0 == key }
            }
            return true
        }

        /// A fetch for `key` is done: the tickets that run now, each with its key.
        mutating func finish(_ key: String) -> [(key: String, ticket: Int)] {
            if let n = active[key] { active[key] = n > 1 ? n - 1 : nil }
            total = max(0, total - 1)
            var started: [(String, Int)] = []
            while total < capacity {
                // The waiting key holding the fewest slots; among equals, the one that waited first.
                let eligible = keyOrder.filter { canRun($0) }
                guard let next = eligible.min(by: { active[$0, default: 0] < active[$1, default: 0] }) else { break }
                let ticket = waiting[next]!.removeFirst()
                if waiting[next]!.isEmpty {
                    waiting[next] = nil
                    keyOrder.removeAll { $0 == next }
                } else {
                    // Round robin among keys that keep waiting.
                    keyOrder.removeAll { $0 == next }
                    keyOrder.append(next)
                }
                take(next)
                started.append((next, ticket))
            }
            return started
        }

        private mutating func take(_ key: String) {
            active[key, default: 0] += 1
            total += 1
        }
    }

    private let state: Mutex<(slots: State, next: Int, waiters: [Int: CheckedContinuation<Bool, Never>])>

    init(capacity: Int) {
        state = Mutex((State(capacity: capacity), 0, [:]))
    }

    /// Waits for a slot for `key`; false when cancelled before one was given.
    func acquire(_ key: String) async -> Bool {
        let ticket = state.withLock { s -> Int in
            defer { s.next += 1 }
            return s.next
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let runs = state.withLock { s -> Bool? in
                    if Task.isCancelled { return false }
                    if s.slots.request(key, ticket: ticket) { return true }
                    s.waiters[ticket] = continuation
                    return nil
                }
                if let runs { continuation.resume(returning: runs) }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
                guard s.slots.withdraw(key, ticket: ticket) else { return nil }
                return s.waiters.removeValue(forKey: ticket)
            }
            waiter?.resume(returning: false)
        }
    }

    /// Gives back a slot taken with a successful ``acquire(_:)``.
    func release(_ key: String) {
        let resume = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            s.slots.finish(key).compactMap { s.waiters.removeValue(forKey: $0.ticket) }
        }
        for continuation in resume { continuation.resume(returning: true) }
    }

    /// Slots in use and fetches waiting, for status output.
    var usage: (active: Int, waiting: Int) {
        state.withLock { s in (s.slots.total, s.slots.waiting.values.reduce(0) { $0 + $1.count }) }
    }
}
