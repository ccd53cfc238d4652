import Synchronization

/// Stop actions registered as processes start, run newest first whether or not the test threw.
public final class ProcessCleanup: Sendable {
    public init() {}

    private let actions = Mutex<[@Sendable () async -> Void]>([])

    /// Registers `action` (e.g. `{ await registry.stop() }`).
    public func add(_ action: @escaping @Sendable () async -> Void) {
        actions.withLock { $0.append(action) }
    }

    /// Runs every action, newest first, once.
    public func run() async {
        let pending = actions.withLock { list in
            defer { list.removeAll() }
            return list
        }
        for action in pending.reversed() { await action() }
    }
}
