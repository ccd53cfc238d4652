import Synchronization

/// Runs one operation per key at a time; callers that arrive while it runs share its result.
///
/// The shared work runs in its own task rather than in the first caller's: if that caller's
/// client goes away, the others still get their answer (structured concurrency has no parent
/// that outlives every caller here, which is why this is an unstructured `Task`).
final class SingleFlight<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let inflight = Mutex<[Key: Task<Result<Value, RegistryError>, Never>]>([:])

    func run(_ key: Key, _ operation: @escaping @Sendable () async throws(RegistryError) -> Value) async throws(RegistryError) -> Value {
        let task = inflight.withLock { map -> Task<Result<Value, RegistryError>, Never> in
            if let running = map[key] { return running }
            let task = Task<Result<Value, RegistryError>, Never> {
                do throws(RegistryError) {
                    return .success(try await operation())
                } catch {
                    return .failure(error)
                }
            }
            map[key] = task
            return task
        }
        let result = await task.value
        inflight.withLock { map in
            if map[key] == task { map[key] = nil }
        }
        return try result.get()
    }

    /// Operations running now.
    var count: Int { inflight.withLock { $0.count } }
}

import RegistryModel
