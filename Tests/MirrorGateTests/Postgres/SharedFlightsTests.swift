import Logging
import MirrorGatePostgres
import MirrorGateStorage
import RegistryModel
import Synchronization
import Testing

@testable import MirrorGateCore

extension PostgresTests {
    /// Manifest flights of two replicas sharing real PostgreSQL leases: the holder spends the
    /// one GET; the other waits for its lease and re-reads what it stored.
    @Suite("SharedFlights")
    struct SharedFlightsTests {
        static let key = FlightKey.manifest(registry: "docker.io", repository: "library/app", digest: Digest(algorithm: .sha256, hex: String(repeating: "b", count: 64)))

        /// What "the upstream" saw, and what "the shared store" holds.
        final class Upstream: Sendable {
            private let state = Mutex<(gets: Int, stored: String?)>((0, nil))
            var gets: Int { state.withLock { $0.gets } }
            /// Whether this is the first GET (the one made to fail).
            func getIsFirst() -> Bool { state.withLock { $0.gets += 1; return $0.gets == 1 } }
            var stored: String? { state.withLock { $0.stored } }
            func get() { state.withLock { $0.gets += 1 } }
            func store(_ value: String) { state.withLock { $0.stored = value } }
        }

        /// Two replicas' coordinators on `leases`, their services running around `body`.
        static func withReplicas(_ leases: PostgresFetchLeases, _ body: @Sendable ([SharedFlights]) async throws -> Void) async throws {
            let replicas = ["a", "b"].map { name in
                SharedFlights(
                    cluster: ReplicaCluster(
                        leases: leases, owner: .replica(name: name, url: "http://127.0.0.1:1"),
                        peers: PeerClient(token: "unused-here", headTimeout: .seconds(1), readTimeout: .seconds(1))),
                    logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for replica in replicas { group.addTask { try await replica.run() } }
                try await body(replicas)
                group.cancelAll()
            }
            for replica in replicas { try await replica.cluster?.peers.shutdown() }
        }

        @Test func twoReplicasAskingAtOnceSpendOneGET() async throws {
            try await TestDatabase.with(pollInterval: .milliseconds(200)) { database, _, _ in
                let upstream = Upstream()
                try await Self.withReplicas(PostgresFetchLeases(database: database)) { replicas in
                    let answers = await withTaskGroup(of: String?.self) { group in
                        for replica in replicas {
                            group.addTask {
                                try? await replica.run(Self.key) { () throws(RegistryError) -> String in
                                    upstream.get()
                                    try? await Task.sleep(for: .milliseconds(500))
                                    upstream.store("manifest")
                                    return "manifest"
                                } reread: { upstream.stored }
                            }
                        }
                        return await group.reduce(into: []) { $0.append($1) }
                    }
                    #expect(answers == ["manifest", "manifest"])
                    #expect(upstream.gets == 1, "the waiting replica spent a second GET")
                }
            }
        }

        @Test func aHolderThatStoredNothingLeavesTheWorkToTheWaiter() async throws {
            try await TestDatabase.with(pollInterval: .milliseconds(200)) { database, _, _ in
                let upstream = Upstream()
                try await Self.withReplicas(PostgresFetchLeases(database: database)) { replicas in
                    let answers = await withTaskGroup(of: String?.self) { group in
                        for replica in replicas {
                            group.addTask {
                                try? await replica.run(Self.key) { () throws(RegistryError) -> String in
                                    let failing = upstream.getIsFirst()
                                    try? await Task.sleep(for: .milliseconds(300))
                                    if failing { throw RegistryError(.manifestUnknown, status: 502, "upstream broke") }
                                    upstream.store("manifest")
                                    return "manifest"
                                } reread: { upstream.stored }
                            }
                        }
                        return await group.reduce(into: []) { $0.append($1) }
                    }
                    // The holder's client gets its error; the waiter fetches once the lease is gone.
                    #expect(answers.compactMap { $0 } == ["manifest"])
                    #expect(upstream.gets == 2)
                }
            }
        }
    }
}
