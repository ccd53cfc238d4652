#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Logging
import MirrorGatePostgres
import Synchronization
import Testing

/// A throwaway PostgreSQL 15 server (Debian's `postgresql-15`) for tests that need the real
/// database: `initdb` in a temporary directory, `postgres` on a free 127.0.0.1 port, stopped
/// by PID. Password authentication (SCRAM) on TCP, as a deployed database has it.
///
/// As root (initdb refuses root) both run as the `postgres` user through `setpriv`, which
/// execs, so the PID kept is the server's own; otherwise as the current user. A `/bin/sh`
/// watchdog stops the server if the test process dies without stopping it.
///
/// Each test takes a fresh database of its own (``createDatabase()``), so one server serves a
/// whole suite.
final class PostgresServer: Sendable {
    static let user = "mirrorgate"
    static let password = "pg-test-\(UUID().uuidString.prefix(8))"

    let port: Int
    let directory: String
    private let process = Mutex<Process?>(nil)
    private let watchdog = Mutex<Process?>(nil)

    /// The server of the current suite (see ``PostgresScope``).
    @TaskLocal static var current: PostgresServer?

    /// `$PG_BIN`, Debian's `/usr/lib/postgresql/15/bin`, or `pg_config --bindir` on `PATH`.
    static let binDirectory: String? = {
        var candidates: [String] = []
        if let explicit = ProcessInfo.processInfo.environment["PG_BIN"] { candidates.append(explicit) }
        candidates.append("/usr/lib/postgresql/15/bin")
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0 + "/postgres") }
    }()

    static let skipMessage = "PostgreSQL 15 server not found (/usr/lib/postgresql/15/bin or $PG_BIN); `make test` installs postgresql-15"

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private init(port: Int, directory: String) {
        self.port = port
        self.directory = directory
    }

    /// initdb, then start.
    static func start() async throws -> PostgresServer {
        guard let bin = binDirectory else { throw Failure(description: skipMessage) }
        let directory = NSTemporaryDirectory() + "mirrorgate-pg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let server = PostgresServer(port: try freePort(), directory: directory)
        do {
            try server.handToServerUser(directory)
            try "\(password)\n".write(toFile: directory + "/pwfile", atomically: true, encoding: .utf8)
            try server.handToServerUser(directory + "/pwfile")
            let initdb = try await server.runAsServerUser(bin + "/initdb", [
                "-D", directory + "/data", "-U", user, "--auth-local=trust", "--auth-host=scram-sha-256",
                "--pwfile=\(directory)/pwfile", "-E", "UTF8", "--no-sync", "--no-instructions",
            ])
            guard initdb.status == 0 else { throw Failure(description: "initdb failed (\(initdb.status)): \(initdb.output)") }
            try await server.startServer()
            return server
        } catch {
            await server.stop()
            throw error
        }
    }

    /// Starts `postgres` on the existing data directory and waits until it accepts connections.
    func startServer() async throws {
        guard let bin = Self.binDirectory else { throw Failure(description: Self.skipMessage) }
        guard FileManager.default.fileExists(atPath: directory + "/data/PG_VERSION") else {
            throw Failure(description: "the data directory \(directory)/data is gone; cannot start postgres on it")
        }
        let log = directory + "/postgres.log"
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        output.seekToEndOfFile()
        let child = Process()
        let (executable, arguments) = Self.asServerUser(bin + "/postgres", [
            "-D", directory + "/data", "-c", "listen_addresses=127.0.0.1", "-p", String(port), "-k", directory,
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
        ])
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = arguments
        child.standardInput = FileHandle.nullDevice
        child.standardOutput = output
        child.standardError = output
        try child.run()
        try? output.close()
        process.withLock { $0 = child }
        watchdog.withLock { $0 = Self.startWatchdog(child: child.processIdentifier, directory: directory) }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard child.isRunning else { throw Failure(description: "postgres exited with \(child.terminationStatus)\n\(logTail())") }
            if try await Self.run(bin + "/pg_isready", ["-q", "-h", "127.0.0.1", "-p", String(port)]).status == 0 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Failure(description: "postgres did not accept connections within 30 s\n\(logTail())")
    }

    /// Fast shutdown (SIGINT: clients are disconnected at once) by PID; waits for the exit.
    func stopServer() async {
        guard let child = process.withLock({ $0 }) else { return }
        if child.isRunning {
            kill(child.processIdentifier, SIGCONT)
            kill(child.processIdentifier, SIGINT)
        }
        let deadline = ContinuousClock.now + .seconds(15)
        while child.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        if child.isRunning {
            kill(child.processIdentifier, SIGKILL)
            while child.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
        }
        process.withLock { $0 = nil }
        if let w = watchdog.withLock({ s -> Process? in defer { s = nil }; return s }), w.isRunning { kill(w.processIdentifier, SIGKILL) }
    }

    /// The server's PID while it runs.
    var pid: Int32? { process.withLock { $0?.isRunning == true ? $0?.processIdentifier : nil } }

    /// Stops the server and removes its directory.
    func stop() async {
        await stopServer()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A new, empty database for one test.
    func createDatabase() async throws -> String {
        let name = "t_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        try await psql("CREATE DATABASE \(name)")
        return name
    }

    /// Runs SQL with `psql` (as the superuser, over TCP with the password).
    @discardableResult
    func psql(_ sql: String, database: String = "postgres") async throws -> String {
        guard let bin = Self.binDirectory else { throw Failure(description: Self.skipMessage) }
        let result = try await Self.run(
            bin + "/psql",
            ["-h", "127.0.0.1", "-p", String(port), "-U", Self.user, "-d", database, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql],
            environment: ["PGPASSWORD": Self.password, "PGCONNECT_TIMEOUT": "10"])
        guard result.status == 0 else { throw Failure(description: "psql failed (\(result.status)): \(result.output)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The gateway's settings for `database` on this server.
    func configuration(
        database: String, password: String? = PostgresServer.password, poolSize: Int = 8, queryTimeout: Duration = .seconds(5),
        pollInterval: Duration = .seconds(1)
    ) -> PostgresConfiguration {
        PostgresConfiguration(
            host: "127.0.0.1", port: port, username: Self.user, password: password, database: database, tls: .disable,
            poolSize: poolSize, connectTimeout: .seconds(3), queryTimeout: queryTimeout, migrationTimeout: .seconds(60),
            pollInterval: pollInterval)
    }

    func logTail() -> String {
        let text = (try? String(contentsOfFile: directory + "/postgres.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(30).joined(separator: "\n")
    }

    // MARK: - Processes

    private static var isRoot: Bool { getuid() == 0 }

    /// `setpriv` as `postgres` when root; the program itself otherwise.
    private static func asServerUser(_ program: String, _ arguments: [String]) -> (String, [String]) {
        guard isRoot else { return (program, arguments) }
        return ("/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", program] + arguments)
    }

    private func runAsServerUser(_ program: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        let (executable, args) = Self.asServerUser(program, arguments)
        return try await Self.run(executable, args)
    }

    private func handToServerUser(_ path: String) throws {
        guard Self.isRoot else { return }
        guard let pw = getpwnam("postgres") else { throw Failure(description: "running as root, but there is no postgres user (install postgresql-15)") }
        guard chown(path, pw.pointee.pw_uid, pw.pointee.pw_gid) == 0 else {
            throw Failure(description: "chown \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Runs a command to completion; its output goes through a file (no pipe to fill).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        let out = NSTemporaryDirectory() + "mirrorgate-pgcmd-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: out) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = arguments
        child.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        child.standardInput = FileHandle.nullDevice
        child.standardOutput = handle
        child.standardError = handle
        try child.run()
        try? handle.close()
        let deadline = ContinuousClock.now + .seconds(120)
        while child.isRunning {
            if ContinuousClock.now > deadline {
                kill(child.processIdentifier, SIGKILL)
                throw Failure(description: "\(executable) timed out")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return (child.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    /// A port on 127.0.0.1 that was free a moment ago.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else { throw Failure(description: "bind: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `/bin/sh` polling this test process; when it is gone, it stops the server (SIGQUIT,
    /// immediate shutdown, then SIGKILL) and removes its directory.
    private static func startWatchdog(child: Int32, directory: String) -> Process? {
        let script = """
            while kill -0 "$1" 2>/dev/null; do
              kill -0 "$2" 2>/dev/null || exit 0
              sleep 0.5
            done
            kill -QUIT "$2" 2>/dev/null; sleep 2; kill -KILL "$2" 2>/dev/null
            rm -rf "$3"
            """
        let watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: "/bin/sh")
        watchdog.arguments = ["-c", script, "postgres-watchdog", String(getpid()), String(child), directory]
        watchdog.standardInput = FileHandle.nullDevice
        watchdog.standardOutput = FileHandle.nullDevice
        watchdog.standardError = FileHandle.nullDevice
        return (try? watchdog.run()) != nil ? watchdog : nil
    }
}

/// Starts one ``PostgresServer`` around a whole suite and stops it afterwards; tests find it in
/// ``PostgresServer/current``.
struct PostgresScope: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard PostgresServer.binDirectory != nil else { return try await function() }
        let server = try await PostgresServer.start()
        do {
            try await PostgresServer.$current.withValue(server) { try await function() }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}

extension Trait where Self == PostgresScope {
    /// One PostgreSQL server for the suite.
    static var postgresServer: Self { PostgresScope() }
}

/// A database of the suite's server with a running ``PostgresDatabase`` on it, migrated.
struct TestDatabase {
    static let logger = Logger(label: "pg-test") { _ in SwiftLogNoOpLogHandler() }

    /// Runs `body` with a migrated database on a fresh database of the suite's server; the
    /// client is stopped afterwards. Tests without a server are skipped by their `.enabled` trait.
    static func with<T: Sendable>(
        poolSize: Int = 8, queryTimeout: Duration = .seconds(5), pollInterval: Duration = .seconds(1),
        _ body: @Sendable (PostgresDatabase, PostgresServer, String) async throws -> T
    ) async throws -> T {
        let server = try #require(PostgresServer.current, "no PostgreSQL server for this suite")
        let name = try await server.createDatabase()
        let database = try PostgresDatabase(
            configuration: server.configuration(database: name, poolSize: poolSize, queryTimeout: queryTimeout, pollInterval: pollInterval),
            logger: logger)
        return try await running(database) {
            try await database.migrate()
            return try await body(database, server, name)
        }
    }

    /// Runs `database` (its pool and listener) around `body`.
    static func running<T: Sendable>(_ database: PostgresDatabase, _ body: @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await database.run()
                return nil
            }
            defer { group.cancelAll() }
            let value = try await body()
            group.cancelAll()
            while try await group.next() != nil {}
            return value
        }
    }
}

/// Whether tests that need a PostgreSQL server can run here.
let postgresAvailable = PostgresServer.binDirectory != nil
