import Foundation

/// Several `mirrorgate` processes on 127.0.0.1 sharing one ``PostgresServer`` database
/// (`metadata.backend: postgres`) and one `storage.path` (the ReadWriteMany mode), each with a
/// peer port of its own. Stopped by PID with ``stop()``; the directories go with ``remove()``.
public final class ReplicaSet: Sendable {
    public let postgres: PostgresServer
    public let database: String
    /// The shared `storage.path`.
    public let storage: TemporaryDirectory
    public let replicas: [GatewayProcess]

    private init(postgres: PostgresServer, database: String, storage: TemporaryDirectory, replicas: [GatewayProcess]) {
        self.postgres = postgres
        self.database = database
        self.storage = storage
        self.replicas = replicas
    }

    /// The `metadata:` and `cluster:` sections of one replica.
    public static func clusterYAML(postgres: PostgresServer, database: String, peerPort: Int, tokenFile: URL) -> String {
        """
        metadata:
          backend: postgres
          postgres:
            url: \(postgres.url(database: database))
            password_file: \(postgres.passwordFile.path)
            pool_size: 4
        cluster:
          peer_listen: 127.0.0.1:\(peerPort)
          advertise_url: http://127.0.0.1:\(peerPort)
          peer_token_file: \(tokenFile.path)

        """
    }

    /// Starts PostgreSQL, makes a database, and starts `count` replicas of `config` on one
    /// shared storage directory (each starts after the previous one answers, except that their
    /// schema migration may race: `mirrorgate` takes an advisory lock for it).
    public static func start(_ config: GatewayConfig, count: Int) async throws -> ReplicaSet {
        let postgres = try await PostgresServer.start()
        do {
            let database = try await postgres.createDatabase()
            let storage = try TemporaryDirectory(prefix: "mirrorgate-it-shared")
            let tokenFile = storage.appending("peer-token")
            try "peer-token-\(UUID().uuidString)\n".write(to: tokenFile, atomically: true, encoding: .utf8)
            let data = try storage.subdirectory("data")
            let started = try await withThrowingTaskGroup(of: (Int, GatewayProcess).self) { group in
                for index in 0..<count {
                    var replica = config
                    replica.storagePath = data.path
                    replica.extraYAML = clusterYAML(postgres: postgres, database: database, peerPort: try FreePort.allocate(), tokenFile: tokenFile)
                        + config.extraYAML
                    let prepared = replica
                    group.addTask { (index, try await GatewayProcess.start(prepared, name: "replica\(index)")) }
                }
                var all: [(Int, GatewayProcess)] = []
                do {
                    for try await started in group { all.append(started) }
                } catch {
                    for (_, gateway) in all { await gateway.stop() }
                    throw error
                }
                return all.sorted { $0.0 < $1.0 }.map(\.1)
            }
            return ReplicaSet(postgres: postgres, database: database, storage: storage, replicas: started)
        } catch {
            await postgres.stop()
            postgres.remove()
            throw error
        }
    }

    /// Starts a set, runs `body`, and stops every process whether or not `body` throws.
    public static func with<T>(_ config: GatewayConfig, count: Int, _ body: (ReplicaSet) async throws -> T) async throws -> T {
        let set = try await start(config, count: count)
        do {
            let result = try await body(set)
            await set.stop()
            set.remove()
            return result
        } catch {
            await set.stop()
            throw error
        }
    }

    /// A query's result on the shared database (`psql -A -t`).
    public func sql(_ query: String) async throws -> String {
        try await postgres.psql(query, database: database)
    }

    /// Stops every replica, then PostgreSQL.
    public func stop() async {
        for replica in replicas { await replica.stop() }
        await postgres.stop()
    }

    public func remove() {
        storage.remove()
        postgres.remove()
    }
}
