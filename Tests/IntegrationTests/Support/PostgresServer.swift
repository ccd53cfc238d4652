#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A throwaway PostgreSQL 15 server (Debian's `postgresql-15`) for multi-replica tests:
/// `initdb` in a temporary directory, `postgres` on a free 127.0.0.1 port as a
/// ``ManagedProcess`` (so it is stopped by PID, and by the watchdog if the test process dies),
/// SCRAM password authentication on TCP as a deployed database has it.
///
/// As root (initdb refuses root) both run as the `postgres` user through `setpriv`, which
/// execs, so the PID kept is the server's own; otherwise as the current user.
///
/// ```swift
/// let pg = try await PostgresServer.start()
/// defer { pg.remove() }                       // after stop()
/// let db = try await pg.createDatabase()
/// // metadata: {backend: postgres, postgres: {url: pg.url(database: db), password_file: pg.passwordFile.path}}
/// await pg.stop()
/// ```
public final class PostgresServer: Sendable {
    /// The superuser the gateway connects as.
    public static let user = "mirrorgate"
    /// Its password (also in ``passwordFile``).
    public let password: String
    /// The port on 127.0.0.1.
    public let port: Int
    /// Holds the data directory, the log and ``passwordFile``.
    public let directory: TemporaryDirectory
    /// The server process (replaced on a restart).
    private let current = Mutex<ManagedProcess?>(nil)

    /// Where Debian puts the server's programs (`$PG_BIN` overrides).
    public static let binDirectory: String? = {
        var candidates: [String] = []
        if let explicit = ProcessInfo.processInfo.environment["PG_BIN"] { candidates.append(explicit) }
        candidates.append("/usr/lib/postgresql/15/bin")
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0 + "/postgres") }
    }()

    /// Why tests that need the server are skipped when it is missing.
    public static let skipMessage = "PostgreSQL 15 server not found (/usr/lib/postgresql/15/bin or $PG_BIN); `make test` installs postgresql-15"

    private init(port: Int, password: String, directory: TemporaryDirectory) {
        self.port = port
        self.password = password
        self.directory = directory
    }

    /// The password file (a gateway's `metadata.postgres.password_file`).
    public var passwordFile: URL { directory.appending("pwfile") }

    /// `postgres://mirrorgate@127.0.0.1:PORT/DATABASE` (no password).
    public func url(database: String) -> String { "postgres://\(Self.user)@127.0.0.1:\(port)/\(database)?sslmode=disable" }

    /// The server's PID while it runs.
    public var pid: Int32? { current.withLock { $0.flatMap { $0.isRunning ? $0.pid : nil } } }

    /// Runs initdb and starts the server.
    public static func start() async throws -> PostgresServer {
        guard let bin = binDirectory else { throw ManagedProcess.Failure(skipMessage) }
        let directory = try TemporaryDirectory(prefix: "mirrorgate-it-pg")
        let server = PostgresServer(port: try FreePort.allocate(), password: "pg-it-\(UUID().uuidString.prefix(12))", directory: directory)
        try handToServerUser(directory.path)
        try "\(server.password)\n".write(to: server.passwordFile, atomically: true, encoding: .utf8)
        try handToServerUser(server.passwordFile.path)
        let (executable, arguments) = asServerUser(bin + "/initdb", [
            "-D", directory.appending("data").path, "-U", user, "--auth-local=trust", "--auth-host=scram-sha-256",
            "--pwfile=\(server.passwordFile.path)", "-E", "UTF8", "--no-sync", "--no-instructions",
        ])
        let initdb = try await ManagedProcess.run(URL(fileURLWithPath: executable), arguments: arguments, timeout: .seconds(120))
        guard initdb.succeeded else { throw ManagedProcess.Failure("initdb failed (\(initdb.status)): \(initdb.stdoutText)\(initdb.stderr)") }
        try await server.startServer()
        return server
    }

    /// Starts `postgres` on the existing data directory (again, after ``stopServer()``) and waits
    /// until it accepts connections.
    public func startServer() async throws {
        guard let bin = Self.binDirectory else { throw ManagedProcess.Failure(Self.skipMessage) }
        let (executable, arguments) = Self.asServerUser(bin + "/postgres", [
            "-D", directory.appending("data").path, "-c", "listen_addresses=127.0.0.1", "-p", String(port), "-k", directory.path,
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
        ])
        let process = try ManagedProcess(
            name: "postgres", executable: URL(fileURLWithPath: executable), arguments: arguments, stdoutLog: directory.appending("postgres.log"))
        current.withLock { $0 = process }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw ManagedProcess.Failure("postgres exited (\(process.exitStatus ?? -1))\n\(process.logTail())") }
            let ready = try await ManagedProcess.run(
                URL(fileURLWithPath: bin + "/pg_isready"), arguments: ["-q", "-h", "127.0.0.1", "-p", String(port)], timeout: .seconds(10))
            if ready.succeeded { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ManagedProcess.Failure("postgres did not accept connections within 30 s\n\(process.logTail())")
    }

    /// Fast shutdown by PID (SIGINT: clients are disconnected at once), waiting for the exit.
    public func stopServer() async {
        guard let process = current.withLock({ $0 }) else { return }
        process.kill(signal: SIGINT)
        if !(await process.waitForExit(timeout: .seconds(15))) { await process.stop(grace: .seconds(1)) }
        await process.stop()
        current.withLock { $0 = nil }
    }

    /// Stops the server; the directory goes with ``directory`` (or ``remove()``).
    public func stop() async {
        await stopServer()
    }

    /// Removes the data directory (after ``stop()``).
    public func remove() { directory.remove() }

    /// A new, empty database.
    public func createDatabase() async throws -> String {
        let name = "it_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        try await psql("CREATE DATABASE \(name)")
        return name
    }

    /// Runs SQL with `psql` over TCP with the password; returns its unaligned, tuples-only output.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") async throws -> String {
        guard let bin = Self.binDirectory else { throw ManagedProcess.Failure(Self.skipMessage) }
        let result = try await ManagedProcess.run(
            URL(fileURLWithPath: bin + "/psql"),
            arguments: ["-h", "127.0.0.1", "-p", String(port), "-U", Self.user, "-d", database, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql],
            environment: ["PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"], timeout: .seconds(60))
        guard result.succeeded else { throw ManagedProcess.Failure("psql failed (\(result.status)): \(result.stderr)") }
        return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: - Running as the postgres user

    private static var isRoot: Bool { getuid() == 0 }

    private static func asServerUser(_ program: String, _ arguments: [String]) -> (String, [String]) {
        guard isRoot else { return (program, arguments) }
        return ("/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", program] + arguments)
    }

    private static func handToServerUser(_ path: String) throws {
        guard isRoot else { return }
        guard let pw = getpwnam("postgres") else { throw ManagedProcess.Failure("running as root, but there is no postgres user (install postgresql-15)") }
        guard chown(path, pw.pointee.pw_uid, pw.pointee.pw_gid) == 0 else {
            throw ManagedProcess.Failure("chown \(path): \(String(cString: strerror(errno)))")
        }
    }
}
