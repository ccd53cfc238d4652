#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A child process owned by a test: started with Foundation `Process`, its output
/// appended to log files, and guaranteed to be gone when the test is over.
///
/// Cleanup happens in three layers:
/// 1. tests call ``stop(grace:)`` (SIGTERM, then SIGKILL after the grace period, then
///    wait for the exit) — usually through a scoped helper such as
///    `UpstreamRegistry.with { ... }` that also stops on a thrown error;
/// 2. `deinit` does the same synchronously if the object is dropped while the child
///    still runs (e.g. a `#require` threw before the explicit stop);
/// 3. unless disabled, a tiny `/bin/sh` watchdog polls the test process and SIGKILLs
///    the child if the test process dies without running (1) or (2) (crash, `fatalError`).
///
/// Standard input is `/dev/null`. Standard output and standard error are appended to
/// ``stdoutLog`` and ``stderrLog`` (the same file unless a separate one is asked for),
/// opened with `O_APPEND` so a test may truncate them while the child runs.
public final class ManagedProcess: Sendable {
    /// A failure to start, wait for, or talk to a managed process.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong, including the tail of the process log where useful.
        public let description: String
        /// Creates a failure with a message.
        public init(_ description: String) { self.description = description }
    }

    /// The outcome of a finished command (see ``run(_:arguments:environment:workingDirectory:timeout:)``).
    public struct CommandResult: Sendable {
        /// The exit status (or the signal number if ``signaled``).
        public let status: Int32
        /// Whether the command was ended by a signal.
        public let signaled: Bool
        /// Everything written to standard output.
        public let stdout: Data
        /// Everything written to standard error, as UTF-8 text.
        public let stderr: String
        /// Standard output as UTF-8 text.
        public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
        /// Whether the command exited normally with status 0.
        public var succeeded: Bool { !signaled && status == 0 }
    }

    /// A short name used in logs and error messages, e.g. `upstream` or `gateway`.
    public let name: String
    /// The executable that was started.
    public let executable: URL
    /// The arguments passed to it (without `argv[0]`).
    public let arguments: [String]
    /// The file standard output is appended to.
    public let stdoutLog: URL
    /// The file standard error is appended to (may equal ``stdoutLog``).
    public let stderrLog: URL

    // `Process` is Sendable in swift-corelibs-foundation and Foundation on Darwin.
    private let process: Process
    private let watchdog: Process?

    /// Starts `executable` right away.
    ///
    /// - Parameters:
    ///   - name: A short label for messages.
    ///   - executable: Absolute path of the program.
    ///   - arguments: Its arguments.
    ///   - environment: Variables added to (or, if `inheritEnvironment` is false,
    ///     replacing) the test process's environment.
    ///   - inheritEnvironment: Start from the current environment (default) or from empty.
    ///   - workingDirectory: The child's current directory (default: inherited).
    ///   - stdoutLog: File to append standard output to (created if missing).
    ///   - stderrLog: File to append standard error to; `nil` means the same file.
    ///   - watchdog: Start the watchdog that kills the child if the test process dies.
    public init(
        name: String,
        executable: URL,
        arguments: [String],
        environment: [String: String] = [:],
        inheritEnvironment: Bool = true,
        workingDirectory: URL? = nil,
        stdoutLog: URL,
        stderrLog: URL? = nil,
        watchdog: Bool = true
    ) throws {
        self.name = name
        self.executable = executable
        self.arguments = arguments
        self.stdoutLog = stdoutLog
        self.stderrLog = stderrLog ?? stdoutLog

        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = inheritEnvironment ? ProcessInfo.processInfo.environment : [:]
        env.merge(environment) { _, new in new }
        process.environment = env
        if let workingDirectory { process.currentDirectoryURL = workingDirectory }
        process.standardInput = FileHandle.nullDevice
        let out = try Self.openAppending(stdoutLog)
        let errHandle: FileHandle
        if let stderrLog, stderrLog != stdoutLog {
            errHandle = try Self.openAppending(stderrLog)
        } else {
            errHandle = out
        }
        process.standardOutput = out
        process.standardError = errHandle
        do {
            try withTerminationSignalsUnblocked { try process.run() }
        } catch {
            throw Failure("\(name): cannot start \(executable.path): \(error)")
        }
        // The child has its own copies of the descriptors now.
        try? out.close()
        if errHandle !== out { try? errHandle.close() }
        self.process = process
        self.watchdog = watchdog ? Self.startWatchdog(child: process.processIdentifier) : nil
    }

    deinit {
        stopSynchronously(grace: .seconds(3))
    }

    // MARK: - State

    /// The child's process id.
    public var pid: Int32 { process.processIdentifier }

    /// Whether the child is still running (a SIGSTOPped child counts as running).
    public var isRunning: Bool { process.isRunning }

    /// The exit status once the child has exited (or the signal number if it was
    /// killed by one), `nil` while it runs.
    public var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    /// Whether the child was ended by a signal (valid once it has exited).
    public var wasSignaled: Bool { !process.isRunning && process.terminationReason == .uncaughtSignal }

    // MARK: - Signals and stopping

    /// Sends `signal` (e.g. `SIGKILL`, `SIGSTOP`, `SIGCONT`, `SIGTERM`) to the child.
    /// Does nothing if the child has already exited.
    public func kill(signal: Int32) {
        guard process.isRunning else { return }
        sendSignal(process.processIdentifier, signal)
    }

    /// Stops the child: SIGTERM (plus SIGCONT, in case it is stopped), waits up to
    /// `grace`, then SIGKILL, and waits for the exit. Idempotent.
    public func stop(grace: Duration = .seconds(5)) async {
        defer { killWatchdog() }
        guard process.isRunning else { return }
        kill(signal: SIGTERM)
        kill(signal: SIGCONT)
        if await waitForExit(timeout: grace) { return }
        kill(signal: SIGKILL)
        _ = await waitForExit(timeout: .seconds(30))
    }

    /// Waits until the child has exited or `timeout` has passed; returns whether it exited.
    @discardableResult
    public func waitForExit(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    /// The blocking variant of ``stop(grace:)``, for `deinit`.
    private func stopSynchronously(grace: Duration) {
        defer { killWatchdog() }
        guard process.isRunning else { return }
        kill(signal: SIGTERM)
        kill(signal: SIGCONT)
        let deadline = ContinuousClock.now + grace
        while process.isRunning, ContinuousClock.now < deadline { usleep(10_000) }
        guard process.isRunning else { return }
        kill(signal: SIGKILL)
        let hardDeadline = ContinuousClock.now + .seconds(10)
        while process.isRunning, ContinuousClock.now < hardDeadline { usleep(10_000) }
    }

    private func killWatchdog() {
        guard let watchdog, watchdog.isRunning else { return }
        sendSignal(watchdog.processIdentifier, SIGKILL)
    }

    // MARK: - Readiness

    /// Polls `url` until it answers with `expectStatus`.
    ///
    /// Fails early, with the tail of the log, if the child exits; fails after `timeout`
    /// with the last status or error seen.
    public func waitForHTTP(_ url: String, expectStatus: Int = 200, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        var last = "no attempt"
        while true {
            guard process.isRunning else {
                throw Failure("\(name) exited (status \(process.terminationStatus)) before \(url) answered \(expectStatus)\n\(logTail())")
            }
            do {
                let response = try await HTTPFetch.get(url, timeout: .seconds(2))
                if response.status == expectStatus { return }
                last = "status \(response.status)"
            } catch {
                last = "\(error)"
            }
            if ContinuousClock.now >= deadline {
                throw Failure("\(name): \(url) did not answer \(expectStatus) within \(timeout) (last: \(last))\n\(logTail())")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    // MARK: - Logs

    /// The standard output log's content.
    public func stdoutText() -> String {
        (try? String(contentsOf: stdoutLog, encoding: .utf8)) ?? ""
    }

    /// The standard error log's content (the same as ``stdoutText()`` when shared).
    public func stderrText() -> String {
        (try? String(contentsOf: stderrLog, encoding: .utf8)) ?? ""
    }

    /// The last `lines` lines of the log(s), labelled, for error messages.
    public func logTail(lines: Int = 40) -> String {
        func tail(_ text: String) -> String {
            text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
        }
        if stdoutLog == stderrLog {
            return "--- \(name) log (\(stdoutLog.path)) ---\n\(tail(stdoutText()))"
        }
        return "--- \(name) stdout (\(stdoutLog.path)) ---\n\(tail(stdoutText()))\n--- \(name) stderr (\(stderrLog.path)) ---\n\(tail(stderrText()))"
    }

    // MARK: - One-shot commands

    /// Runs a command to completion and returns its status and output.
    ///
    /// Output goes through temporary files (no pipe deadlocks). If the command
    /// outlives `timeout` it is stopped and ``Failure`` is thrown.
    public static func run(
        _ executable: URL,
        arguments: [String],
        environment: [String: String] = [:],
        workingDirectory: URL? = nil,
        timeout: Duration = .seconds(300)
    ) async throws -> CommandResult {
        let scratch = try TemporaryDirectory(prefix: "cmd")
        let outURL = scratch.appending("stdout")
        let errURL = scratch.appending("stderr")
        let child = try ManagedProcess(
            name: executable.lastPathComponent,
            executable: executable,
            arguments: arguments,
            environment: environment,
            workingDirectory: workingDirectory,
            stdoutLog: outURL,
            stderrLog: errURL
        )
        guard await child.waitForExit(timeout: timeout) else {
            await child.stop(grace: .seconds(2))
            throw Failure("\(executable.path) \(arguments.joined(separator: " ")) timed out after \(timeout)\n\(child.logTail())")
        }
        child.killWatchdog()
        return CommandResult(
            status: child.process.terminationStatus,
            signaled: child.process.terminationReason == .uncaughtSignal,
            stdout: (try? Data(contentsOf: outURL)) ?? Data(),
            stderr: child.stderrText()
        )
    }

    /// Finds `program` in `PATH` (and the usual system directories); `nil` if absent.
    public static func which(_ program: String) -> URL? {
        if program.contains("/") {
            return FileManager.default.isExecutableFile(atPath: program) ? URL(fileURLWithPath: program) : nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        for dir in dirs {
            let candidate = URL(fileURLWithPath: dir).appendingPathComponent(program)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    // MARK: - Helpers

    private static func openAppending(_ url: URL) throws -> FileHandle {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Failure("cannot open log \(url.path): \(String(cString: strerror(errno)))") }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    /// Starts `/bin/sh` polling this test process; when it is gone, SIGKILLs `child`.
    /// It exits by itself as soon as the child is gone.
    private static func startWatchdog(child: Int32) -> Process? {
        let script = """
            while kill -0 "$1" 2>/dev/null; do
              kill -0 "$2" 2>/dev/null || exit 0
              sleep 0.5
            done
            kill -KILL "$2" 2>/dev/null
            """
        let watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: "/bin/sh")
        watchdog.arguments = ["-c", script, "mirrorgate-watchdog", String(getpid()), String(child)]
        watchdog.standardInput = FileHandle.nullDevice
        watchdog.standardOutput = FileHandle.nullDevice
        watchdog.standardError = FileHandle.nullDevice
        do {
            try withTerminationSignalsUnblocked { try watchdog.run() }
            return watchdog
        } catch {
            return nil
        }
    }
}

/// `kill(2)` under a name that does not clash with ``ManagedProcess/kill(signal:)``.
private func sendSignal(_ pid: Int32, _ signal: Int32) {
    _ = kill(pid, signal)
}

/// Runs `body` (which spawns a child) with the usual termination signals unblocked
/// on the calling thread.
///
/// A spawned child inherits the spawning thread's signal mask, and Swift concurrency /
/// libdispatch worker threads block most signals. Without this, children started from
/// a test would have SIGTERM blocked and could only be stopped with SIGKILL. Only
/// termination signals are touched (never SIGCHLD, which the runtime may be reading
/// through a signalfd); the previous mask is restored right after the spawn.
private func withTerminationSignalsUnblocked<T>(_ body: () throws -> T) rethrows -> T {
    var unblock = sigset_t()
    sigemptyset(&unblock)
    for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT] {
        sigaddset(&unblock, signal)
    }
    var previous = sigset_t()
    pthread_sigmask(SIG_UNBLOCK, &unblock, &previous)
    defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
    return try body()
}
