import Synchronization

/// Delivers the database's notifications (LISTEN) to the tasks waiting for them, in process.
///
/// A waiter registers **before** it looks at the state it waits on, then waits on its ticket:
/// a notification that arrives in between is kept on the ticket, so it is never lost to that
/// race. (Notifications sent while no connection listened are lost all the same; waiters poll.)
final class NotificationHub: Sendable {
    struct Ticket: Sendable {
        let id: UInt64
        let payload: String
    }

    private struct Entry {
        var payload: String
        var fired = false
        var continuation: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex<(next: UInt64, entries: [UInt64: Entry])>((0, [:]))

    /// Starts collecting notifications with exactly `payload` for one ``wait(_:timeout:)``.
    func register(_ payload: String) -> Ticket {
        state.withLock { s in
            s.next += 1
            s.entries[s.next] = Entry(payload: payload)
            return Ticket(id: s.next, payload: payload)
        }
    }

    /// Wakes the tickets of `payload`.
    func deliver(_ payload: String) {
        let woken = state.withLock { s in
            var out: [CheckedContinuation<Void, Never>] = []
            for (id, entry) in s.entries where entry.payload == payload {
                if let c = entry.continuation { out.append(c) }
                s.entries[id]?.fired = true
                s.entries[id]?.continuation = nil
            }
            return out
        }
        for c in woken { c.resume() }
    }

    /// Wakes every ticket (the listener reconnected: anything may have happened).
    func wakeAll() {
        let woken = state.withLock { s in
            var out: [CheckedContinuation<Void, Never>] = []
            for id in s.entries.keys {
                if let c = s.entries[id]?.continuation { out.append(c) }
                s.entries[id]?.fired = true
                s.entries[id]?.continuation = nil
            }
            return out
        }
        for c in woken { c.resume() }
    }

    /// Returns when the ticket was notified (also before this call) or `timeout` passed, or
    /// the task is cancelled; the ticket is used up.
    func wait(_ ticket: Ticket, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let resumeNow = self.state.withLock { s -> Bool in
                        guard let entry = s.entries[ticket.id], !entry.fired else { return true }
                        s.entries[ticket.id]?.continuation = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            fire(ticket.id)
            group.cancelAll()
        }
        _ = state.withLock { $0.entries.removeValue(forKey: ticket.id) }
    }

    /// Gives a ticket up without waiting on it.
    func drop(_ ticket: Ticket) {
        fire(ticket.id)
        _ = state.withLock { $0.entries.removeValue(forKey: ticket.id) }
    }

    private func fire(_ id: UInt64) {
        let continuation = state.withLock { s -> CheckedContinuation<Void, Never>? in
            defer {
                s.entries[id]?.fired = true
                s.entries[id]?.continuation = nil
            }
            return s.entries[id]?.continuation
        }
        continuation?.resume()
    }

    /// Tickets waiting (for tests: none may be left behind).
    var pending: Int { state.withLock { $0.entries.count } }
}
