import Foundation
import Testing

/// Self-test of ``PostgresServer``, the database the multi-replica tests share: it starts,
/// takes password logins, makes databases, stops by PID, starts again on the same data, and
/// leaves nothing running.
@Suite(.enabled(if: PostgresServer.binDirectory != nil, Comment(rawValue: PostgresServer.skipMessage)))
struct PostgresHarnessTests {
    @Test func startsStopsAndRestartsOnTheSameData() async throws {
        let pg = try await PostgresServer.start()
        defer { pg.remove() }
        do {
            let pid = try #require(pg.pid)
            #expect(try await pg.psql("SHOW server_version").hasPrefix("15."))
            let db = try await pg.createDatabase()
            try await pg.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (42)", database: db)
            #expect(pg.url(database: db) == "postgres://mirrorgate@127.0.0.1:\(pg.port)/\(db)?sslmode=disable")
            #expect(try String(contentsOf: pg.passwordFile, encoding: .utf8) == pg.password + "\n")

            await pg.stopServer()
            #expect(pg.pid == nil)
            #expect(kill(pid, 0) != 0, "postgres \(pid) still runs after stopServer()")
            await #expect(throws: (any Error).self) { try await pg.psql("SELECT 1") }

            try await pg.startServer()
            #expect(try await pg.psql("SELECT x FROM t", database: db) == "42")
        } catch {
            await pg.stop()
            throw error
        }
        await pg.stop()
        #expect(pg.pid == nil)
    }
}
