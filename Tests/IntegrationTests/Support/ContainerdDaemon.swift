#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A private containerd (Debian's `containerd` 1.6) for tests, driven with `ctr`.
///
/// ``start(name:namespace:disabledPlugins:startupTimeout:)`` writes a `config.toml`
/// into a fresh temporary directory and runs `containerd --config config.toml`, with
/// everything of its own under that directory:
///
/// - `root/` and `state/` — containerd's `root` and `state` (the content store is
///   `root/io.containerd.content.v1.content/blobs/sha256/<hex>`);
/// - `containerd.sock` (gRPC) and `containerd.sock.ttrpc`;
/// - `tmp/` — containerd's `temp`;
/// - `containerd.log` — its log (standard output and standard error);
/// - `hosts-<n>/` — directories written by ``writeHostsDir(registries:overridePath:)``.
///
/// Everything that needs privileges or touches the machine is disabled (see
/// ``defaultDisabledPlugins``): CRI, the `opt` plugin (which would create `/opt/containerd`),
/// every snapshotter but `native`, the task runtimes (so no `containerd-shim` is ever
/// started) and the cgroups monitor. What is left — content store, metadata, images,
/// leases, namespaces, the `native` snapshotter and the `walking` differ — is all
/// ``fetch(ref:hostsDir:platform:allPlatforms:httpDump:timeout:)`` needs.
///
/// Privileges: `ctr content fetch` (fetch into the content store, no unpack) needs none;
/// it was checked with containerd and ctr running as `nobody`. `ctr images pull` also
/// works here because the tests run as root, but only with `--snapshotter native`
/// (overlayfs is disabled), and it fails without root: unpacking a layer mounts it.
///
/// Note that with `ctr` the registry client is `ctr` itself, not the daemon: `ctr`
/// resolves the reference, talks HTTP to the hosts in the hosts directory (User-Agent
/// `containerd/1.6.20~ds1`) and streams what it downloads into the daemon's content store.
///
/// Use ``with(name:namespace:_:)`` to have the daemon stopped even when the body throws;
/// `deinit` stops a forgotten daemon as a safety net (through ``ManagedProcess``).
public final class ContainerdDaemon: Sendable {
    /// A failure of the daemon or of a `ctr` command, with details.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong.
        public let description: String
        /// Creates a failure with a message.
        public init(_ description: String) { self.description = description }
    }

    /// One HTTP request as printed by `ctr … --http-dump` (see ``dumpedRequests(in:)``).
    public struct DumpedRequest: Sendable, Hashable, CustomStringConvertible {
        /// `GET` or `HEAD`.
        public let method: String
        /// The request target, query string included, e.g.
        /// `/v2/library/alpine/manifests/v1?ns=docker.io`.
        public let uri: String
        /// Request header fields by name as printed (`Host`, `Accept`, `User-Agent`, …).
        public let headers: [String: String]

        /// Creates a request record.
        public init(method: String, uri: String, headers: [String: String]) {
            self.method = method
            self.uri = uri
            self.headers = headers
        }

        /// The value of header `name` (case-insensitive), if present.
        public func header(_ name: String) -> String? {
            headers.first { $0.key.caseInsensitiveCompare(name) == .orderedSame }?.value
        }

        /// The path part of ``uri``.
        public var path: String { uri.firstIndex(of: "?").map { String(uri[..<$0]) } ?? uri }

        /// `METHOD uri`.
        public var description: String { "\(method) \(uri)" }
    }

    /// The plugins disabled by default: everything that needs privileges, touches files
    /// outside the temporary directory, or could start processes.
    ///
    /// - `io.containerd.grpc.v1.cri` — Kubernetes CRI (networking, sandboxes).
    /// - `io.containerd.internal.v1.opt` — would create `/opt/containerd/{bin,lib}`.
    /// - snapshotters `aufs` (modprobe), `btrfs`, `zfs` (need such a file system),
    ///   `devmapper` (needs a thin pool; logs an error otherwise), `overlayfs` (mounts).
    /// - runtimes `io.containerd.runtime.v1.linux`, `io.containerd.runtime.v2.task`, the
    ///   tasks service and API, `io.containerd.internal.v1.restart` and the cgroups
    ///   monitor: nothing here runs containers, so no shim can ever be started.
    public static let defaultDisabledPlugins: [String] = [
        "io.containerd.grpc.v1.cri",
        "io.containerd.internal.v1.opt",
        "io.containerd.snapshotter.v1.aufs",
        "io.containerd.snapshotter.v1.btrfs",
        "io.containerd.snapshotter.v1.devmapper",
        "io.containerd.snapshotter.v1.zfs",
        "io.containerd.snapshotter.v1.overlayfs",
        "io.containerd.runtime.v1.linux",
        "io.containerd.runtime.v2.task",
        "io.containerd.monitor.v1.cgroups",
        "io.containerd.internal.v1.restart",
        "io.containerd.service.v1.tasks-service",
        "io.containerd.grpc.v1.tasks",
    ]

    /// The plugins the daemon must load, or fail to start (`required_plugins`).
    public static let requiredPlugins: [String] = [
        "io.containerd.content.v1.content",
        "io.containerd.metadata.v1.bolt",
        "io.containerd.grpc.v1.content",
        "io.containerd.grpc.v1.images",
        "io.containerd.grpc.v1.leases",
        "io.containerd.grpc.v1.namespaces",
    ]

    /// A short name for logs and messages.
    public let name: String
    /// The containerd namespace `ctr` commands use (`--namespace`).
    public let namespace: String
    /// The temporary directory holding everything (removed when the daemon goes away).
    public let directory: TemporaryDirectory
    /// containerd's `root`.
    public let rootDirectory: URL
    /// containerd's `state`.
    public let stateDirectory: URL
    /// containerd's `temp`.
    public let tempDirectory: URL
    /// The generated `config.toml`.
    public let configURL: URL
    /// The daemon's log (standard output and standard error).
    public let logURL: URL
    /// The gRPC socket, `<directory>/containerd.sock` (`ctr --address`).
    public let socketPath: String
    /// The plugins disabled in ``configURL``.
    public let disabledPlugins: [String]
    /// The `containerd` executable.
    public let containerdExecutable: URL
    /// The `ctr` executable.
    public let ctrExecutable: URL
    /// A TCP port on 127.0.0.1 that is bound by this object but never listened on, so
    /// every connection to it is refused at once and no other process can take it
    /// while the daemon runs. Written as `server` in every hosts file, so that a mirror
    /// that fails can never make containerd fall back to the real registry.
    public let closedPort: Int

    private let current: Mutex<ManagedProcess?>
    /// Holds ``closedPort`` until ``stop(grace:)``.
    private let closedPortReservation: ClosedPort
    private let hostsDirCounter: Mutex<Int>

    /// `http://127.0.0.1:<closedPort>`, the `server` of every written hosts file.
    public var closedServerURL: String { "http://127.0.0.1:\(closedPort)" }
    /// The daemon's process id, `nil` when stopped.
    public var pid: Int32? { current.withLock { $0?.isRunning == true ? $0?.pid : nil } }
    /// Whether the daemon process is running.
    public var isRunning: Bool { current.withLock { $0?.isRunning ?? false } }
    /// The content store's blob directory, `<root>/io.containerd.content.v1.content/blobs/sha256`.
    public var blobDirectory: URL {
        rootDirectory.appendingPathComponent("io.containerd.content.v1.content/blobs/sha256", isDirectory: true)
    }

    // MARK: - Locating

    /// Finds `containerd` and `ctr` (`$MIRRORGATE_CONTAINERD` / `$MIRRORGATE_CTR` first),
    /// failing with instructions if they are not installed.
    public static func locateBinaries() throws -> (containerd: URL, ctr: URL) {
        let environment = ProcessInfo.processInfo.environment
        let containerd = environment["MIRRORGATE_CONTAINERD"].map { URL(fileURLWithPath: $0) } ?? ManagedProcess.which("containerd")
        let ctr = environment["MIRRORGATE_CTR"].map { URL(fileURLWithPath: $0) } ?? ManagedProcess.which("ctr")
        guard let containerd, let ctr else {
            throw Failure(
                "containerd and ctr are not installed. Run `make test`, which installs the test dependencies "
                    + "(apt-get install -y containerd), or install them yourself."
            )
        }
        return (containerd, ctr)
    }

    // MARK: - Lifecycle

    /// Starts a daemon and waits until `ctr --address SOCK version` succeeds.
    ///
    /// - Parameters:
    ///   - name: A label for logs and messages.
    ///   - namespace: The namespace `ctr` commands use.
    ///   - disabledPlugins: `disabled_plugins` of the config.
    ///   - startupTimeout: How long to wait for the daemon to answer.
    public static func start(
        name: String = "containerd",
        namespace: String = "test",
        disabledPlugins: [String] = defaultDisabledPlugins,
        startupTimeout: Duration = .seconds(30)
    ) async throws -> ContainerdDaemon {
        let daemon = try ContainerdDaemon(name: name, namespace: namespace, disabledPlugins: disabledPlugins)
        do {
            try await daemon.launch(timeout: startupTimeout)
        } catch {
            await daemon.stop()
            throw error
        }
        return daemon
    }

    /// Starts a daemon, runs `body`, and stops the daemon whether or not `body` throws.
    public static func with<T>(
        name: String = "containerd",
        namespace: String = "test",
        _ body: (ContainerdDaemon) async throws -> T
    ) async throws -> T {
        let daemon = try await start(name: name, namespace: namespace)
        do {
            let result = try await body(daemon)
            await daemon.stop()
            return result
        } catch {
            await daemon.stop()
            throw error
        }
    }

    private init(name: String, namespace: String, disabledPlugins: [String]) throws {
        let binaries = try Self.locateBinaries()
        self.containerdExecutable = binaries.containerd
        self.ctrExecutable = binaries.ctr
        self.name = name
        self.namespace = namespace
        self.disabledPlugins = disabledPlugins
        self.directory = try TemporaryDirectory(prefix: "mirrorgate-\(name)")
        self.rootDirectory = try directory.subdirectory("root")
        self.stateDirectory = try directory.subdirectory("state")
        self.tempDirectory = try directory.subdirectory("tmp")
        self.configURL = directory.appending("config.toml")
        self.logURL = directory.appending("containerd.log")
        self.socketPath = directory.appending("containerd.sock").path
        // sun_path holds 108 bytes including the NUL; the ttrpc socket adds ".ttrpc".
        guard socketPath.utf8.count + ".ttrpc".count < 108 else {
            throw Failure("\(name): socket path \(socketPath).ttrpc is too long for a unix socket; set TMPDIR to a shorter directory")
        }
        let reserved = try ClosedPort()
        self.closedPort = reserved.port
        self.closedPortReservation = reserved
        self.current = Mutex(nil)
        self.hostsDirCounter = Mutex(0)
        try renderConfig().write(to: configURL, atomically: true, encoding: .utf8)
    }

    deinit {
        // ManagedProcess.deinit stops the daemon if it is still running.
        _ = current.withLock { $0.take() }
    }

    /// The `config.toml` written to ``configURL``.
    public func renderConfig() -> String {
        func quoted(_ value: String) -> String {
            "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        func list(_ values: [String]) -> String {
            "[" + values.map(quoted).joined(separator: ", ") + "]"
        }
        return """
            version = 2
            root = \(quoted(rootDirectory.path))
            state = \(quoted(stateDirectory.path))
            temp = \(quoted(tempDirectory.path))
            disabled_plugins = \(list(disabledPlugins))
            required_plugins = \(list(Self.requiredPlugins.filter { !disabledPlugins.contains($0) }))

            [grpc]
              address = \(quoted(socketPath))
              uid = \(getuid())
              gid = \(getgid())

            [ttrpc]
              address = \(quoted(socketPath + ".ttrpc"))
              uid = \(getuid())
              gid = \(getgid())

            [debug]
              address = ""
              level = "info"

            [metrics]
              address = ""

            """
    }

    private func launch(timeout: Duration) async throws {
        let process = try ManagedProcess(
            name: name,
            executable: containerdExecutable,
            arguments: ["--config", configURL.path],
            environment: ["TMPDIR": tempDirectory.path],
            stdoutLog: logURL
        )
        current.withLock { $0 = process }
        let deadline = ContinuousClock.now + timeout
        var last = "socket \(socketPath) not created yet"
        while true {
            guard process.isRunning else {
                throw Failure("\(name) exited (status \(process.exitStatus ?? -1)) before answering\n\(process.logTail())")
            }
            if FileManager.default.fileExists(atPath: socketPath) {
                let version = try await ManagedProcess.run(
                    ctrExecutable,
                    arguments: ["--address", socketPath, "--connect-timeout", "2s", "version"],
                    environment: Self.clientEnvironment,
                    timeout: .seconds(10))
                if version.succeeded { return }
                last = "ctr version: status \(version.status): \(version.stderr)"
            }
            if ContinuousClock.now >= deadline {
                throw Failure("\(name) did not answer within \(timeout) (last: \(last))\n\(process.logTail())")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Stops the daemon by its PID (SIGTERM, then SIGKILL after `grace`) and waits for
    /// it to exit; then SIGKILLs any `containerd-shim*` started for this daemon (there
    /// should be none: the runtimes are disabled), lazily unmounts anything left mounted
    /// under ``directory``, and releases ``closedPort``. Idempotent.
    public func stop(grace: Duration = .seconds(5)) async {
        let process = current.withLock { $0.take() }
        killStrayShims()
        if let process { await process.stop(grace: grace) }
        killStrayShims()
        await MountTable.unmountAll(under: directory.url)
        closedPortReservation.release()
    }

    /// The ids of running `containerd-shim*` processes whose arguments mention this
    /// daemon's socket or directory.
    public func strayShimPIDs() -> [Int32] {
        let me = directory.path
        return ProcessTable.processes().compactMap { pid, arguments in
            guard let program = arguments.first,
                  URL(fileURLWithPath: program).lastPathComponent.hasPrefix("containerd-shim"),
                  arguments.contains(where: { $0 == socketPath || $0.hasPrefix(me) })
            else { return nil }
            return pid
        }
    }

    /// The ids of every running process (other than zombies) whose arguments mention
    /// this daemon's config, socket or directory, the daemon itself included.
    public func processesUsingDirectory() -> [Int32] {
        ProcessTable.pids(withArgumentStartingWith: directory.path)
    }

    private func killStrayShims() {
        for pid in strayShimPIDs() { _ = kill(pid, SIGKILL) }
    }

    /// Mount points under ``directory`` (e.g. left by an interrupted `ctr images pull`).
    public func mountsUnderDirectory() -> [String] {
        MountTable.mountPoints(under: directory.url)
    }

    /// The tail of the daemon's log, for failure messages.
    public func logTail(lines: Int = 40) -> String {
        let text = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        let tail = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
        return "--- \(name) log (\(logURL.path)) ---\n\(tail)"
    }

    // MARK: - Hosts directories

    /// Writes a new hosts directory (`<directory>/hosts-<n>/`) for `ctr --hosts-dir`,
    /// one `<host>/hosts.toml` per entry:
    ///
    ///     server = "http://127.0.0.1:<closedPort>"
    ///
    ///     [host."http://127.0.0.1:GW"]
    ///       capabilities = ["pull", "resolve"]
    ///
    /// `server` is ``closedServerURL``: containerd tries the mirror first and, when it
    /// fails (connection refused, 404, 5xx, …), the server, which refuses at once — so a
    /// test never reaches the real registry. Entries with the same `host` become several
    /// mirrors of that host, tried in order.
    ///
    /// - Parameters:
    ///   - registries: `host` is the registry name as in image references (`docker.io`,
    ///     `ghcr.io`, or `_default` for every other registry); `mirrorURL` is the
    ///     mirror's base URL, optionally with a path (`http://127.0.0.1:GW/ghcr.io`).
    ///     Without `override_path` containerd appends `/v2/<name>/…` to that path
    ///     (`/ghcr.io/v2/library/alpine/manifests/v1`).
    ///   - overridePath: Writes `override_path = true`: the mirror URL's path is then the
    ///     API root itself and must end with `/v2` (containerd sends
    ///     `<path>/<name>/manifests/…`, no `/v2` added).
    /// - Returns: The directory to pass to ``fetch(ref:hostsDir:platform:allPlatforms:httpDump:timeout:)``.
    @discardableResult
    public func writeHostsDir(registries: [(host: String, mirrorURL: String)], overridePath: Bool = false) throws -> URL {
        let number = hostsDirCounter.withLock { counter in
            counter += 1
            return counter
        }
        let hostsDir = try directory.subdirectory("hosts-\(number)")
        var order: [String] = []
        var mirrors: [String: [String]] = [:]
        for entry in registries {
            if mirrors[entry.host] == nil { order.append(entry.host) }
            mirrors[entry.host, default: []].append(entry.mirrorURL)
        }
        for host in order {
            let text = Self.renderHostsFile(server: closedServerURL, mirrors: mirrors[host] ?? [], overridePath: overridePath)
            let hostDir = hostsDir.appendingPathComponent(host, isDirectory: true)
            try FileManager.default.createDirectory(at: hostDir, withIntermediateDirectories: true)
            try text.write(to: hostDir.appendingPathComponent("hosts.toml"), atomically: true, encoding: .utf8)
        }
        return hostsDir
    }

    /// The text of one `hosts.toml`: `server`, then one `[host."…"]` table per mirror,
    /// with `capabilities = ["pull", "resolve"]` (and `override_path = true` if asked).
    public static func renderHostsFile(server: String, mirrors: [String], overridePath: Bool = false) -> String {
        var text = "server = \"\(server)\"\n"
        for mirror in mirrors {
            text += "\n[host.\"\(mirror)\"]\n"
            text += "  capabilities = [\"pull\", \"resolve\"]\n"
            if overridePath { text += "  override_path = true\n" }
        }
        return text
    }

    // MARK: - ctr

    /// Environment for `ctr`: no proxies, no `CONTAINERD_*` defaults from the machine.
    static let clientEnvironment: [String: String] = [
        "http_proxy": "", "https_proxy": "", "HTTP_PROXY": "", "HTTPS_PROXY": "",
        "no_proxy": "*", "NO_PROXY": "*",
        "CONTAINERD_ADDRESS": "", "CONTAINERD_NAMESPACE": "", "CONTAINERD_SNAPSHOTTER": "",
    ]

    /// Runs `ctr --address SOCK --namespace NS <arguments>` and returns its result
    /// (a non-zero exit is not thrown; a timeout is).
    public func ctr(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> ManagedProcess.CommandResult {
        try await ManagedProcess.run(
            ctrExecutable,
            arguments: ["--address", socketPath, "--namespace", namespace] + arguments,
            environment: Self.clientEnvironment,
            workingDirectory: directory.url,
            timeout: timeout)
    }

    /// Like ``ctr(_:timeout:)`` but throws ``Failure`` (with ctr's standard error) on a
    /// non-zero exit.
    @discardableResult
    public func ctrSucceeding(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> ManagedProcess.CommandResult {
        let result = try await ctr(arguments, timeout: timeout)
        guard result.succeeded else {
            throw Failure("ctr \(arguments.joined(separator: " ")) failed with status \(result.status):\n\(result.stderr)\n\(logTail(lines: 10))")
        }
        return result
    }

    /// Fetches `ref` into the content store without unpacking:
    /// `ctr --address SOCK --namespace NS content fetch --hosts-dir DIR
    /// [--all-platforms | --platform P] [--http-dump] REF`.
    ///
    /// No `--plain-http` is needed: the `http://` scheme of the mirror in `hosts.toml`
    /// is honoured. The command's result is returned as is — a failed fetch (status 1,
    /// the reason in ``ManagedProcess/CommandResult/stderr``) is not thrown, so tests can
    /// check failures; only a timeout throws.
    ///
    /// - Parameters:
    ///   - ref: A fully qualified reference, e.g. `docker.io/library/alpine:3.19` or
    ///     `ghcr.io/org/app@sha256:…`.
    ///   - hostsDir: From ``writeHostsDir(registries:overridePath:)``.
    ///   - platform: `--platform` (default `linux/amd64`); `nil` leaves ctr's default
    ///     (the machine's platform). Ignored when `allPlatforms` is set.
    ///   - allPlatforms: `--all-platforms`: every manifest of an index and its blobs.
    ///   - httpDump: `--http-dump`: ctr logs every request and response, headers and
    ///     bodies, to standard error; parse with ``dumpedRequests(in:)``. Use only with
    ///     small images.
    public func fetch(
        ref: String,
        hostsDir: URL,
        platform: String? = "linux/amd64",
        allPlatforms: Bool = false,
        httpDump: Bool = false,
        timeout: Duration = .seconds(120)
    ) async throws -> ManagedProcess.CommandResult {
        var arguments = ["content", "fetch", "--hosts-dir", hostsDir.path]
        if allPlatforms {
            arguments.append("--all-platforms")
        } else if let platform {
            arguments += ["--platform", platform]
        }
        if httpDump { arguments.append("--http-dump") }
        arguments.append(ref)
        return try await ctr(arguments, timeout: timeout)
    }

    // MARK: - Content store

    /// The digests in the content store for ``namespace`` (`ctr content ls -q`).
    public func contentDigests() async throws -> Set<String> {
        let result = try await ctrSucceeding(["content", "ls", "--quiet"])
        return Set(result.stdoutText.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("sha256:") })
    }

    /// The image records of ``namespace`` (`ctr images ls -q`), e.g.
    /// `docker.io/library/alpine-test:v1`.
    public func imageNames() async throws -> [String] {
        let result = try await ctrSucceeding(["images", "ls", "--quiet"])
        return result.stdoutText.split(whereSeparator: \.isNewline).map(String.init)
    }

    /// Deletes every image record and every piece of content of ``namespace``, so the
    /// next fetch downloads everything again. Throws if content is left.
    public func removeAllContent() async throws {
        let images = try await imageNames()
        if !images.isEmpty { try await ctrSucceeding(["images", "rm", "--sync"] + images) }
        // Removing the images lets the garbage collector delete content too; whatever
        // is left is removed explicitly (a digest the collector got first is not an error).
        let digests = try await contentDigests()
        if !digests.isEmpty { _ = try await ctr(["content", "rm"] + digests.sorted()) }
        let left = try await contentDigests()
        guard left.isEmpty else { throw Failure("\(name): content left after removal: \(left.sorted())") }
    }

    /// The blob file of `digest` in the content store (may not exist).
    public func blobPath(_ digest: String) -> URL {
        blobDirectory.appendingPathComponent(String(digest.split(separator: ":", maxSplits: 1).last ?? ""))
    }

    /// Recomputes the SHA-256 of every file under ``blobDirectory`` and checks it against
    /// the file's name; returns the digests found, with sizes. Throws ``Failure`` listing
    /// every mismatch or unexpected file. (Covers every namespace: the store is shared.)
    @discardableResult
    public func verifyContentStore() throws -> [String: Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: blobDirectory.path)) ?? []
        var problems: [String] = []
        var found: [String: Int] = [:]
        for name in names.sorted() {
            guard name.count == 64, name.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                problems.append("unexpected file blobs/sha256/\(name)")
                continue
            }
            do {
                let (digest, size) = try ContentDescriptor.sha256(ofFile: blobDirectory.appendingPathComponent(name))
                if digest != "sha256:\(name)" { problems.append("blobs/sha256/\(name) hashes to \(digest)") }
                found["sha256:\(name)"] = size
            } catch {
                problems.append("blobs/sha256/\(name) unreadable: \(error)")
            }
        }
        guard problems.isEmpty else {
            throw Failure("content store \(blobDirectory.path) is invalid:\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
        }
        return found
    }

    // MARK: - --http-dump parsing

    /// The requests in the standard error of a `ctr … --http-dump` run, in order, with
    /// their request headers.
    ///
    /// ctr logs each line of the dump as a logrus entry (`time=… level=info msg="…"`):
    /// the request line, one header per entry, an empty entry, then the response. A
    /// body without a final newline is glued to the next request line, so request lines
    /// are recognised by their `… HTTP/1.1` ending.
    public static func dumpedRequests(in stderr: String) -> [DumpedRequest] {
        var requests: [DumpedRequest] = []
        var pending: (method: String, uri: String)?
        var headers: [String: String] = [:]
        func flush() {
            if let pending { requests.append(DumpedRequest(method: pending.method, uri: pending.uri, headers: headers)) }
            pending = nil
            headers = [:]
        }
        for line in stderr.split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.contains("level=info") else { continue }
            let message: String
            if let range = line.range(of: " msg=") {
                var value = String(line[range.upperBound...])
                if value.hasPrefix("\"") {
                    value.removeFirst()
                    if let end = value.lastIndex(of: "\"") { value = String(value[..<end]) }
                }
                message = value.replacingOccurrences(of: "\\\"", with: "\"")
            } else {
                message = ""  // `level=info` with no msg: the blank line after headers
            }
            if message.hasSuffix(" HTTP/1.1") {
                let words = message.dropLast(" HTTP/1.1".count).split(separator: " ")
                if words.count >= 2,
                   let method = ["HEAD", "GET", "POST", "PUT", "PATCH", "DELETE"].first(where: { words[words.count - 2].hasSuffix($0) }) {
                    flush()
                    pending = (method, String(words[words.count - 1]))
                    continue
                }
            }
            guard pending != nil else { continue }
            if message.isEmpty {
                flush()
            } else if let colon = message.firstIndex(of: ":") {
                let field = String(message[..<colon])
                let value = message[message.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                headers[field] = value
            }
        }
        flush()
        return requests
    }
}
