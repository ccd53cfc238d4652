import Foundation
import Synchronization

/// The MirrorGate executable under test, run as `mirrorgate serve --config <dir>/gateway.yaml`.
///
/// The binary is found by ``locateBinary()``. ``start(_:name:arguments:environment:startupTimeout:)``
/// writes the configuration to a temporary directory, starts the process (output
/// appended to `gateway.log` there) and waits until `GET /v2/` answers 200.
/// ``restart()`` keeps the port, configuration and storage.
public final class GatewayProcess: Sendable {
    /// The resolved configuration (port and storage path filled in).
    public let config: GatewayConfig
    /// The port it listens on (127.0.0.1).
    public let port: Int
    /// The temporary directory holding `gateway.yaml`, `gateway.log` and (by default) `data/`.
    public let directory: TemporaryDirectory
    /// The written configuration file.
    public let configURL: URL
    /// The combined stdout/stderr log.
    public let logURL: URL
    /// The storage directory (`storage.path`).
    public let storagePath: URL
    /// The executable.
    public let executable: URL
    /// Extra arguments after `serve --config PATH`.
    public let extraArguments: [String]
    /// Extra environment variables.
    public let environment: [String: String]
    /// A command the gateway runs under, which must exec it (`["prlimit", "--nofile=128:384", "--"]`).
    public let wrapper: [String]

    private let current: Mutex<ManagedProcess?>

    /// `http://127.0.0.1:<port>` (`https://` with `tls:` in the configuration).
    public var url: String { "\(usesTLS ? "https" : "http")://127.0.0.1:\(port)" }
    /// Whether the configuration's extra YAML turns on `tls:`.
    public var usesTLS: Bool { config.extraYAML.hasPrefix("tls:") || config.extraYAML.contains("\ntls:") }
    /// `127.0.0.1:<port>`, for skopeo references.
    public var hostPort: String { "127.0.0.1:\(port)" }
    /// The running process's id, `nil` when stopped.
    public var pid: Int32? { current.withLock { $0?.isRunning == true ? $0?.pid : nil } }
    /// Whether the gateway process is running.
    public var isRunning: Bool { current.withLock { $0?.isRunning ?? false } }

    /// Finds the `mirrorgate` executable built by SwiftPM.
    ///
    /// Order: `$MIRRORGATE_BINARY`; next to the running test bundle (`/proc/self/exe`,
    /// then `CommandLine.arguments[0]`, then `Bundle.main`) — SwiftPM puts the test
    /// bundle and executables in the same `.build/<triple>/<config>/` directory; then
    /// `<package root>/.build/debug/mirrorgate` derived from this source file's path.
    public static func locateBinary() throws -> URL {
        let fm = FileManager.default
        if let override = ProcessInfo.processInfo.environment["MIRRORGATE_BINARY"] {
            guard fm.isExecutableFile(atPath: override) else {
                throw ManagedProcess.Failure("MIRRORGATE_BINARY=\(override) is not an executable file")
            }
            return URL(fileURLWithPath: override)
        }
        var candidates: [URL] = []
        func addBundleDirectory(of path: String) {
            var url = URL(fileURLWithPath: path).resolvingSymlinksInPath()
            // Walk up out of `X.xctest` (a directory bundle on Darwin, a file on Linux).
            while url.path != "/" {
                url.deleteLastPathComponent()
                if !url.path.contains(".xctest") { break }
            }
            candidates.append(url.appendingPathComponent("mirrorgate"))
        }
        if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") { addBundleDirectory(of: exe) }
        if let first = CommandLine.arguments.first, first.hasPrefix("/") { addBundleDirectory(of: first) }
        addBundleDirectory(of: Bundle.main.bundleURL.appendingPathComponent("x").path)
        let packageRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // Support
            .deletingLastPathComponent()  // IntegrationTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // package root
        candidates.append(packageRoot.appendingPathComponent(".build/debug/mirrorgate"))
        candidates.append(packageRoot.appendingPathComponent(".build/release/mirrorgate"))
        if let found = candidates.first(where: { fm.isExecutableFile(atPath: $0.path) }) {
            return found
        }
        throw ManagedProcess.Failure(
            "mirrorgate executable not found; looked at:\n" + candidates.map { "  \($0.path)" }.joined(separator: "\n")
                + "\nBuild it with `swift build --build-tests` (or set MIRRORGATE_BINARY)."
        )
    }

    /// Starts a gateway with `config` and waits until `GET /v2/` answers 200.
    ///
    /// A `listenPort` of 0 is replaced by a free port; a `nil` `storagePath` by
    /// `<temp dir>/data`.
    public static func start(
        _ config: GatewayConfig,
        name: String = "gateway",
        arguments: [String] = [],
        environment: [String: String] = [:],
        wrapper: [String] = [],
        startupTimeout: Duration = .seconds(30)
    ) async throws -> GatewayProcess {
        let gateway = try GatewayProcess(config: config, name: name, arguments: arguments, environment: environment, wrapper: wrapper)
        try await gateway.launch(timeout: startupTimeout)
        return gateway
    }

    /// Starts a gateway, runs `body`, and stops the gateway whether or not `body` throws.
    public static func with<T>(
        _ config: GatewayConfig,
        wrapper: [String] = [],
        _ body: (GatewayProcess) async throws -> T
    ) async throws -> T {
        let gateway = try await start(config, wrapper: wrapper)
        do {
            let result = try await body(gateway)
            await gateway.stop()
            return result
        } catch {
            await gateway.stop()
            throw error
        }
    }

    private let name: String

    private init(config: GatewayConfig, name: String, arguments: [String], environment: [String: String], wrapper: [String]) throws {
        self.executable = try Self.locateBinary()
        self.name = name
        self.directory = try TemporaryDirectory(prefix: "mirrorgate-\(name)")
        var resolved = config
        if resolved.listenPort == 0 { resolved.listenPort = try FreePort.allocate() }
        if resolved.storagePath == nil { resolved.storagePath = directory.appending("data", isDirectory: true).path }
        self.config = resolved
        self.port = resolved.listenPort
        self.storagePath = URL(fileURLWithPath: resolved.storagePath!, isDirectory: true)
        self.configURL = directory.appending("gateway.yaml")
        self.logURL = directory.appending("gateway.log")
        self.extraArguments = arguments
        self.environment = environment
        self.wrapper = wrapper
        self.current = Mutex(nil)
        try resolved.render().write(to: configURL, atomically: true, encoding: .utf8)
    }

    private func launch(timeout: Duration) async throws {
        let arguments = ["serve", "--config", configURL.path] + extraArguments
        var command = (executable, arguments)
        if let first = wrapper.first {
            guard let tool = ManagedProcess.which(first) else { throw ManagedProcess.Failure("\(first) (the gateway's wrapper) is not installed") }
            command = (tool, Array(wrapper.dropFirst()) + [executable.path] + arguments)
        }
        let process = try ManagedProcess(
            name: name,
            executable: command.0,
            arguments: command.1,
            environment: environment,
            workingDirectory: directory.url,
            stdoutLog: logURL
        )
        current.withLock { $0 = process }
        do {
            if usesTLS || config.extraYAML.contains("admin_listen:") {
                // HTTPS with a test CA, or /healthz moved to the admin listener: wait for the
                // listener's own announcement instead.
                let deadline = ContinuousClock.now + timeout
                while !logText().contains("listening on 127.0.0.1:\(port)") {
                    guard process.isRunning, ContinuousClock.now < deadline else {
                        throw ManagedProcess.Failure("gateway did not start listening within \(timeout)\n\(logTail())")
                    }
                    try await Task.sleep(for: .milliseconds(50))
                }
            } else {
                // `/healthz` answers even when `auth:` closes `/v2/`.
                try await process.waitForHTTP("\(url)/healthz", expectStatus: 200, timeout: timeout)
            }
        } catch {
            await process.stop()
            throw error
        }
    }

    /// Stops the gateway (SIGTERM, SIGKILL after `grace`) and waits for the exit. Idempotent.
    public func stop(grace: Duration = .seconds(10)) async {
        guard let process = current.withLock({ $0.take() }) else { return }
        await process.stop(grace: grace)
    }

    /// Stops the gateway if running and starts it again with the same port,
    /// configuration and storage.
    public func restart(startupTimeout: Duration = .seconds(30)) async throws {
        await stop()
        try await launch(timeout: startupTimeout)
    }

    /// Sends `signal` (SIGKILL, SIGSTOP, SIGCONT, …) to the gateway process.
    public func kill(signal: Int32) {
        current.withLock { $0 }?.kill(signal: signal)
    }

    /// The exit status of the last process if it has exited on its own (e.g. after
    /// SIGTERM sent with ``kill(signal:)``), `nil` while running or after ``stop(grace:)``.
    public var exitStatus: Int32? { current.withLock { $0 }?.exitStatus }

    /// The whole log so far.
    public func logText() -> String {
        (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
    }

    /// The last lines of the log, for failure messages.
    public func logTail(lines: Int = 60) -> String {
        let tail = logText().split(separator: "\n", omittingEmptySubsequences: false).suffix(lines)
        return "--- \(name) log (\(logURL.path)) ---\n" + tail.joined(separator: "\n")
    }
}
