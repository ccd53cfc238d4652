import Logging
import RegistryModel
import ServiceLifecycle
import Synchronization
import Testing

@testable import MirrorGateCore

/// The in-process flight coordinator: one run per key however many ask, its result (or error)
/// shared, the work running in the service's task group while it runs.
@Suite("LocalFlights")
struct LocalFlightsTests {
    final class Counter: Sendable {
        private let value = Atomic<Int>(0)
        func add() { value.add(1, ordering: .relaxed) }
        var count: Int { value.load(ordering: .relaxed) }
    }

    static let key = FlightKey.manifest(registry: "docker.io", repository: "library/app", digest: Digest(algorithm: .sha256, hex: String(repeating: "a", count: 64)))

    /// Runs `body` with the coordinator's service running in a task group.
    func withRunning(_ body: @Sendable (LocalFlights) async throws -> Void) async throws {
        let flights = LocalFlights()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await flights.run() }
            try await body(flights)
            group.cancelAll()
        }
    }

    @Test func concurrentCallersShareOneRun() async throws {
        try await withRunning { flights in
            let runs = Counter()
            let results = await withTaskGroup(of: Int.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        (try? await flights.run(Self.key) { () throws(RegistryError) -> Int in
                            runs.add()
                            try? await Task.sleep(for: .milliseconds(200))
                            return 42
                        } reread: { nil }) ?? -1
                    }
                }
                var all: [Int] = []
                for await r in group { all.append(r) }
                return all
            }
            #expect(results == Array(repeating: 42, count: 20))
            #expect(runs.count == 1)
        }
    }

    @Test func anErrorIsSharedAndTheNextCallRunsAgain() async throws {
        try await withRunning { flights in
            let runs = Counter()
            let failing: @Sendable () async throws(RegistryError) -> Int = { () throws(RegistryError) -> Int in
                runs.add()
                throw RegistryError(.manifestUnknown, "no")
            }
            await #expect(throws: RegistryError.self) { try await flights.run(Self.key, work: failing, reread: { nil }) }
            await #expect(throws: RegistryError.self) { try await flights.run(Self.key, work: failing, reread: { nil }) }
            #expect(runs.count == 2)
        }
    }

    /// The first caller going away does not take the shared run with it.
    @Test func aCancelledFirstCallerDoesNotCancelTheFlight() async throws {
        try await withRunning { flights in
            let first = Task {
                try await flights.run(Self.key) { () throws(RegistryError) -> Int in
                    try? await Task.sleep(for: .milliseconds(300))
                    return 7
                } reread: { nil }
            }
            try await Task.sleep(for: .milliseconds(50))
            first.cancel()
            let second = try await flights.run(Self.key) { () throws(RegistryError) -> Int in 0 } reread: { nil }
            #expect(second == 7)
        }
    }

    @Test func withoutTheServiceAFlightRunsInItsCaller() async throws {
        let flights = LocalFlights()
        // Run and stop the service: later flights must not wait for it.
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await flights.run() }
            group.cancelAll()
        }
        let value = try await flights.run(Self.key) { () throws(RegistryError) -> Int in 5 } reread: { nil }
        #expect(value == 5)
    }
}
