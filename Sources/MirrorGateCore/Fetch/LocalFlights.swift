import Logging
import RegistryModel
import ServiceLifecycle
import Synchronization

/// ``FlightCoordinator`` within one process: maps from key to the flight in progress.
///
/// A manifest or tag flight runs in this service's task group, not in the first caller's task:
/// if that caller's client goes away, the others still get their answer, and the work is
/// part of the gateway's structured lifetime (cancelled on shutdown), as blob fetches are in
/// ``BlobFetcher``. After the service has stopped, a flight runs in its first caller's task.
final class LocalFlights: FlightCoordinator, Service {
    /// A result every waiter of one flight gets.
    final class SharedResult: Sendable {
        private let state = Mutex<(result: Result<any Sendable, RegistryError>?, waiters: [CheckedContinuation<Result<any Sendable, RegistryError>, Never>])>((nil, []))

        func fulfil(_ result: Result<any Sendable, RegistryError>) {
            let waiters = state.withLock { s -> [CheckedContinuation<Result<any Sendable, RegistryError>, Never>] in
                s.result = result
                defer { s.waiters.removeAll() }
                return s.waiters
            }
            for waiter in waiters { waiter.resume(returning: result) }
        }

        var value: Result<any Sendable, RegistryError> {
            get async {
                await withCheckedContinuation { continuation in
                    let ready = state.withLock { s -> Result<any Sendable, RegistryError>? in
                        if let result = s.result { return result }
                        s.waiters.append(continuation)
                        return nil
                    }
                    if let ready { continuation.resume(returning: ready) }
                }
            }
        }
    }

    private let flights = Mutex<[FlightKey: SharedResult]>([:])
    private let blobs = Mutex<[FlightKey: BlobFetcher.Flight]>([:])
    private let works: AsyncStream<@Sendable () async -> Void>
    private let submit: AsyncStream<@Sendable () async -> Void>.Continuation

    init() {
        (works, submit) = AsyncStream.makeStream(of: (@Sendable () async -> Void).self)
    }

    func run() async throws {
        await withDiscardingTaskGroup { group in
            for await work in works.cancelOnGracefulShutdown() {
                group.addTask { await work() }
            }
        }
        submit.finish()
    }

    func run<Value: Sendable>(
        _ key: FlightKey,
        work: @escaping @Sendable () async throws(RegistryError) -> Value,
        reread: @escaping @Sendable () async -> Value?
    ) async throws(RegistryError) -> Value {
        let (shared, isNew) = flights.withLock { map -> (SharedResult, Bool) in
            if let running = map[key] { return (running, false) }
            let shared = SharedResult()
            map[key] = shared
            return (shared, true)
        }
        if isNew {
            let flight: @Sendable () async -> Void = { [self] in
                let result: Result<any Sendable, RegistryError>
                do throws(RegistryError) {
                    result = .success(try await work())
                } catch {
                    result = .failure(error)
                }
                flights.withLock { map in
                    if map[key] === shared { map[key] = nil }
                }
                shared.fulfil(result)
            }
            if case .terminated = submit.yield(flight) { await flight() }
        }
        switch await shared.value {
        case .success(let value as Value): return value
        case .success: preconditionFailure("one flight key shared by two value types")
        case .failure(let error): throw error
        }
    }

    @discardableResult
    func background(_ work: @escaping @Sendable () async -> Void) -> Bool {
        if case .enqueued = submit.yield(work) { return true }
        return false
    }

    func blobFlight(_ key: FlightKey, start: () -> BlobFetcher.Flight) -> (flight: BlobFetcher.Flight, started: Bool) {
        blobs.withLock { map in
            if let running = map[key] { return (running, false) }
            let flight = start()
            map[key] = flight
            return (flight, true)
        }
    }

    func endBlobFlight(_ key: FlightKey) {
        _ = blobs.withLock { $0.removeValue(forKey: key) }
    }

    func isBlobInFlight(_ key: FlightKey) -> Bool {
        blobs.withLock { $0[key] != nil }
    }

    func runningBlobFlight(_ key: FlightKey) -> BlobFetcher.Flight? {
        blobs.withLock { $0[key] }
    }

    var blobFlights: [BlobFetcher.Flight] {
        blobs.withLock { Array($0.values) }
    }
}
