import Foundation
import MirrorGatePostgres
import MirrorGateStorage
import Testing

extension PostgresTests {
    /// The schema is created by the gateway itself, once, however many replicas start at once.
    @Suite("PostgresSchema")
    struct Schema {
        /// Eight replicas migrate a fresh database at the same moment: every one
        /// succeeds, each migration is applied exactly once, and all end on the current version.
        @Test func concurrentMigratorsApplyEachMigrationOnce() async throws {
            let server = try #require(PostgresServer.current)
            let name = try await server.createDatabase()
            var databases: [PostgresDatabase] = []
            for _ in 0..<8 {
                databases.append(try PostgresDatabase(configuration: server.configuration(database: name, poolSize: 2), logger: TestDatabase.logger))
            }
            let all = databases
            // At start-up, before any pool runs: each migrator has a connection of its own.
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for database in all { group.addTask { try await database.migrate() } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(applied.flatMap { $0 }.sorted() == Array(1...PostgresSchema.currentVersion))
            #expect(try await server.psql("SELECT string_agg(version::text, ',' ORDER BY version) FROM mirrorgate_schema", database: name)
                == (1...PostgresSchema.currentVersion).map(String.init).joined(separator: ","))
            // Starting again migrates nothing and changes nothing.
            let restarted = try PostgresDatabase(configuration: server.configuration(database: name), logger: TestDatabase.logger)
            try await TestDatabase.running(restarted) {
                let again = try await restarted.migrate()
                let version = try await restarted.schemaVersion()
                #expect(again == [])
                #expect(version == PostgresSchema.currentVersion)
            }
            // No migration lock is left behind (advisory locks are per database; other tests migrate theirs).
            #expect(try await server.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())", database: name) == "0")
        }

        @Test func aFreshDatabaseHasNoVersion() async throws {
            let server = try #require(PostgresServer.current)
            let name = try await server.createDatabase()
            let database = try PostgresDatabase(configuration: server.configuration(database: name), logger: TestDatabase.logger)
            try await TestDatabase.running(database) {
                let version = try await database.schemaVersion()
                #expect(version == 0)
            }
        }

        /// The start-up check names the server it reached, and how far its clock is from ours.
        @Test func checkConnectionReportsTheServer() async throws {
            try await TestDatabase.with { database, _, _ in
                let check = try await database.checkConnection()
                #expect(check.serverVersion.hasPrefix("15."))
                #expect(abs(check.clockOffset.components.seconds) < 5)
            }
        }

        /// Start-up errors name what failed: the password, the database, the address.
        @Test func startUpErrorsNameWhatFailed() async throws {
            let server = try #require(PostgresServer.current)
            let wrongPassword = try PostgresDatabase(configuration: server.configuration(database: "postgres", password: "not-the-password"), logger: TestDatabase.logger)
            let error = await #expect(throws: StorageError.self) { try await wrongPassword.checkConnection() }
            #expect(error?.code == .unavailable)
            #expect(error?.description.contains("postgres://mirrorgate@127.0.0.1:\(server.port)/postgres") == true)
            #expect(error?.description.contains("password authentication failed") == true, "\(String(describing: error))")
            #expect(error?.description.contains("not-the-password") == false)

            let noDatabase = try PostgresDatabase(configuration: server.configuration(database: "no_such_db"), logger: TestDatabase.logger)
            let missing = await #expect(throws: StorageError.self) { try await noDatabase.checkConnection() }
            #expect(missing?.description.contains("does not exist") == true, "\(String(describing: missing))")

            var closed = server.configuration(database: "postgres")
            closed.port = try PostgresServer.freePort()
            let unreachable = await #expect(throws: StorageError.self) { try await PostgresDatabase(configuration: closed, logger: TestDatabase.logger).checkConnection() }
            #expect(unreachable?.description.contains("127.0.0.1:\(closed.port)") == true)
            #expect(unreachable?.description.contains("refused") == true, "\(String(describing: unreachable))")
        }
    }
}
