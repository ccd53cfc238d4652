import Foundation
import Synchronization

/// A private dockerd (Debian's `docker.io` 20.10) for tests, driven with the package's
/// `docker` CLI.
///
/// ``start(name:daemonJSON:arguments:startupTimeout:)`` runs
///
///     dockerd [--config-file <dir>/daemon.json] --data-root <dir>/root --exec-root <dir>/exec
///       --pidfile <dir>/dockerd.pid -H unix://<dir>/docker.sock --iptables=false
///       --ip6tables=false --bridge=none --storage-driver=vfs [arguments]
///
/// with everything of its own under a fresh temporary directory:
///
/// - `root/` — `--data-root`: images, and the `vfs/dir/<id>` trees the vfs driver unpacks
///   every layer into (plain directories, no mounts);
/// - `exec/` — `--exec-root`, where dockerd also runs its own containerd (`exec/containerd/`);
/// - `docker.sock`, `dockerd.pid`, `dockerd.log` (standard output and standard error);
/// - `daemon.json` — the `daemonJSON` given, if any;
/// - `client/` — the CLI's `DOCKER_CONFIG` (no `~/.docker/config.json`, no credentials);
/// - `run/` and `etc-docker/` — see below.
///
/// dockerd 20.10 writes two things outside its roots whatever the flags: its trust key
/// `/etc/docker/key.json` and `/run/docker/plugins`. So it runs in a private mount
/// namespace (`unshare --mount`) in which `run/` is bind-mounted over `/run` and
/// `etc-docker/` over `/etc/docker`; those writes land in the temporary directory, and
/// every mount dockerd makes (it bind-mounts its data root onto itself) disappears with
/// the namespace when dockerd exits, even after a SIGKILL. Nothing outside the temporary
/// directory is touched; no `/etc/docker/daemon.json` is read.
///
/// Networking is off (`--bridge=none`, no iptables), so no container can run; pulls need
/// none. dockerd's `HTTP_PROXY`/`HTTPS_PROXY` are ``proxy``, a closed local port, with
/// `NO_PROXY=127.0.0.1,localhost`: the gateway (on 127.0.0.1) is reached directly, and
/// dockerd's fallback to Docker Hub after a failed mirror (`registry-mirrors` always falls
/// back) fails at once with `proxyconnect tcp: dial tcp 127.0.0.1:<port>: connect:
/// connection refused` instead of reaching the internet.
///
/// Use ``with(name:daemonJSON:arguments:_:)`` to have the daemon stopped even when the
/// body throws; `deinit` stops a forgotten daemon as a safety net (through ``ManagedProcess``).
public final class DockerDaemon: Sendable {
    /// A failure of the daemon or of a `docker` command, with details.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong.
        public let description: String
        /// Creates a failure with a message.
        public init(_ description: String) { self.description = description }
    }

    /// What `docker image inspect` reports about an image.
    public struct Image: Sendable, Decodable {
        /// The image ID: the digest of the image config (`sha256:…`).
        public let id: String
        /// `name:tag` entries (short names for Docker Hub images: `alpine:3.19`).
        public let repoTags: [String]
        /// `name@sha256:…`: the digest of the manifest dockerd pulled by tag — for a
        /// multi-platform image the index / manifest list, not the platform's manifest.
        public let repoDigests: [String]
        /// `amd64`, `arm64`, …
        public let architecture: String
        /// `linux`.
        public let os: String
        /// `v8`, …, if any.
        public let variant: String?
        /// The layers' diff IDs (digests of the uncompressed tars), bottom first.
        public let layers: [String]

        private enum CodingKeys: String, CodingKey {
            case id = "Id", repoTags = "RepoTags", repoDigests = "RepoDigests"
            case architecture = "Architecture", os = "Os", variant = "Variant", rootFS = "RootFS"
        }
        private struct RootFS: Decodable {
            let layers: [String]?
            private enum CodingKeys: String, CodingKey { case layers = "Layers" }
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try container.decode(String.self, forKey: .id)
            repoTags = try container.decodeIfPresent([String].self, forKey: .repoTags) ?? []
            repoDigests = try container.decodeIfPresent([String].self, forKey: .repoDigests) ?? []
            architecture = try container.decode(String.self, forKey: .architecture)
            os = try container.decode(String.self, forKey: .os)
            variant = try container.decodeIfPresent(String.self, forKey: .variant)
            layers = try container.decodeIfPresent(RootFS.self, forKey: .rootFS)?.layers ?? []
        }
    }

    /// The registry settings dockerd runs with (`docker info`'s `RegistryConfig`).
    public struct RegistryConfig: Sendable, Decodable {
        /// One entry of `IndexConfigs`.
        public struct Index: Sendable, Decodable {
            /// The registry (`docker.io`, `127.0.0.1:5000`).
            public let name: String
            /// Its mirrors (only Docker Hub has any).
            public let mirrors: [String]
            /// `false` for an insecure registry (plain HTTP allowed).
            public let secure: Bool

            private enum CodingKeys: String, CodingKey { case name = "Name", mirrors = "Mirrors", secure = "Secure" }

            public init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                name = try container.decode(String.self, forKey: .name)
                mirrors = try container.decodeIfPresent([String].self, forKey: .mirrors) ?? []
                secure = try container.decode(Bool.self, forKey: .secure)
            }
        }

        /// `registry-mirrors`, normalised (`http://127.0.0.1:5000/`).
        public let mirrors: [String]
        /// Insecure registries given as CIDRs (dockerd always adds `127.0.0.0/8`).
        public let insecureRegistryCIDRs: [String]
        /// Registries by name.
        public let indexConfigs: [String: Index]

        private enum CodingKeys: String, CodingKey {
            case mirrors = "Mirrors", insecureRegistryCIDRs = "InsecureRegistryCIDRs", indexConfigs = "IndexConfigs"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            mirrors = try container.decodeIfPresent([String].self, forKey: .mirrors) ?? []
            insecureRegistryCIDRs = try container.decodeIfPresent([String].self, forKey: .insecureRegistryCIDRs) ?? []
            indexConfigs = try container.decodeIfPresent([String: Index].self, forKey: .indexConfigs) ?? [:]
        }

        /// The registries named insecure (`insecure-registries` entries that are not CIDRs).
        public var insecureRegistries: [String] { indexConfigs.values.filter { !$0.secure }.map(\.name).sorted() }
    }

    /// A short name for logs and messages.
    public let name: String
    /// The temporary directory holding everything (removed when the daemon goes away).
    public let directory: TemporaryDirectory
    /// `--data-root`.
    public let dataRoot: URL
    /// `--exec-root`.
    public let execRoot: URL
    /// The API socket, `<directory>/docker.sock`.
    public let socketPath: String
    /// `--pidfile`.
    public let pidFileURL: URL
    /// The daemon's log (standard output and standard error).
    public let logURL: URL
    /// `--config-file`, when a `daemon.json` was given.
    public let configFileURL: URL?
    /// The CLI's `DOCKER_CONFIG`.
    public let clientConfigDirectory: URL
    /// Bind-mounted over `/run` in the daemon's mount namespace.
    public let runDirectory: URL
    /// Bind-mounted over `/etc/docker` in the daemon's mount namespace.
    public let etcDockerDirectory: URL
    /// The closed port that is dockerd's `HTTP_PROXY` and `HTTPS_PROXY`.
    public let proxy: ClosedPort
    /// The arguments dockerd runs with.
    public let dockerdArguments: [String]
    /// The `dockerd` executable.
    public let dockerdExecutable: URL
    /// The `docker` CLI.
    public let dockerExecutable: URL

    private let unshareExecutable: URL
    private let current: Mutex<ManagedProcess?>

    /// The daemon's process id, `nil` when stopped.
    public var pid: Int32? { current.withLock { $0?.isRunning == true ? $0?.pid : nil } }
    /// Whether the daemon process is running.
    public var isRunning: Bool { current.withLock { $0?.isRunning ?? false } }

    /// The proxy variables dockerd runs with (and the CLI, which ignores them for a unix socket).
    public var proxyEnvironment: [String: String] {
        [
            "HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url, "http_proxy": proxy.url, "https_proxy": proxy.url,
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        ]
    }

    // MARK: - Locating

    /// Finds `dockerd` and the `docker` CLI (`$MIRRORGATE_DOCKERD` / `$MIRRORGATE_DOCKER`
    /// first), failing with instructions if they are not installed.
    ///
    /// The CLI is the package's `/usr/bin/docker` when it exists: a newer CLI earlier in
    /// `PATH` (such as a `/usr/local/bin/docker`) would also talk to dockerd 20.10 by API
    /// version negotiation, but the tests are about the Debian pair.
    public static func locateBinaries() throws -> (dockerd: URL, docker: URL) {
        let environment = ProcessInfo.processInfo.environment
        let dockerd = environment["MIRRORGATE_DOCKERD"].map { URL(fileURLWithPath: $0) } ?? ManagedProcess.which("dockerd")
        let packaged = FileManager.default.isExecutableFile(atPath: "/usr/bin/docker") ? URL(fileURLWithPath: "/usr/bin/docker") : nil
        let docker = environment["MIRRORGATE_DOCKER"].map { URL(fileURLWithPath: $0) } ?? packaged ?? ManagedProcess.which("docker")
        guard let dockerd, let docker else {
            throw Failure(
                "dockerd and docker are not installed. Run `make test`, which installs the test dependencies "
                    + "(apt-get install -y docker.io), or install them yourself."
            )
        }
        return (dockerd, docker)
    }

    // MARK: - Lifecycle

    /// Starts a daemon and waits until `docker version` reaches it.
    ///
    /// - Parameters:
    ///   - name: A label for logs and messages.
    ///   - daemonJSON: The text of a `daemon.json`, passed with `--config-file` (its keys
    ///     must not repeat the flags above: dockerd refuses a directive given both ways).
    ///   - arguments: More dockerd flags (`--registry-mirror=…`, `--debug`).
    ///   - startupTimeout: How long to wait for the daemon to answer.
    public static func start(
        name: String = "dockerd",
        daemonJSON: String? = nil,
        arguments: [String] = [],
        startupTimeout: Duration = .seconds(60)
    ) async throws -> DockerDaemon {
        let daemon = try DockerDaemon(name: name, daemonJSON: daemonJSON, arguments: arguments)
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
        name: String = "dockerd",
        daemonJSON: String? = nil,
        arguments: [String] = [],
        _ body: (DockerDaemon) async throws -> T
    ) async throws -> T {
        let daemon = try await start(name: name, daemonJSON: daemonJSON, arguments: arguments)
        do {
            let result = try await body(daemon)
            await daemon.stop()
            return result
        } catch {
            await daemon.stop()
            throw error
        }
    }

    private init(name: String, daemonJSON: String?, arguments: [String]) throws {
        let binaries = try Self.locateBinaries()
        guard let unshare = ManagedProcess.which("unshare") else {
            throw Failure("unshare (util-linux) is not installed")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: "/etc/docker", isDirectory: &isDirectory), isDirectory.boolValue else {
            // The mount point for etc-docker/; without it dockerd would create /etc/docker/key.json.
            throw Failure("/etc/docker does not exist (the docker.io package ships it); dockerd would write /etc/docker/key.json")
        }
        self.dockerdExecutable = binaries.dockerd
        self.dockerExecutable = binaries.docker
        self.unshareExecutable = unshare
        self.name = name
        self.directory = try TemporaryDirectory(prefix: "mirrorgate-\(name)")
        self.dataRoot = try directory.subdirectory("root")
        self.execRoot = try directory.subdirectory("exec")
        self.runDirectory = try directory.subdirectory("run")
        self.etcDockerDirectory = try directory.subdirectory("etc-docker")
        self.clientConfigDirectory = try directory.subdirectory("client")
        self.socketPath = directory.appending("docker.sock").path
        self.pidFileURL = directory.appending("dockerd.pid")
        self.logURL = directory.appending("dockerd.log")
        // sun_path holds 108 bytes including the NUL; dockerd's containerd puts its ttrpc
        // socket deepest.
        let deepest = execRoot.appendingPathComponent("containerd/containerd.sock.ttrpc").path
        guard deepest.utf8.count < 108 else {
            throw Failure("\(name): socket path \(deepest) is too long for a unix socket; set TMPDIR to a shorter directory")
        }
        if let daemonJSON {
            let url = directory.appending("daemon.json")
            try daemonJSON.write(to: url, atomically: true, encoding: .utf8)
            self.configFileURL = url
        } else {
            self.configFileURL = nil
        }
        self.proxy = try ClosedPort()
        var flags: [String] = []
        if let configFileURL { flags += ["--config-file", configFileURL.path] }
        flags += [
            "--data-root", dataRoot.path,
            "--exec-root", execRoot.path,
            "--pidfile", pidFileURL.path,
            "-H", "unix://\(socketPath)",
            "--iptables=false", "--ip6tables=false", "--bridge=none",
            "--storage-driver=vfs",
        ]
        self.dockerdArguments = flags + arguments
        self.current = Mutex(nil)
    }

    deinit {
        // ManagedProcess.deinit stops the daemon if it is still running.
        _ = current.withLock { $0.take() }
    }

    private func launch(timeout: Duration) async throws {
        // `unshare` and `sh` exec into dockerd: the managed PID is dockerd's own.
        let script = #"mount --bind "$1" /run && mount --bind "$2" /etc/docker && shift 2 && exec "$@""#
        let path = (ProcessInfo.processInfo.environment["PATH"].map { $0 + ":" } ?? "") + "/usr/sbin:/usr/bin:/sbin:/bin"
        let process = try ManagedProcess(
            name: name,
            executable: unshareExecutable,
            arguments: ["--mount", "--propagation", "private", "/bin/sh", "-c", script, "mirrorgate-\(name)",
                        runDirectory.path, etcDockerDirectory.path, dockerdExecutable.path] + dockerdArguments,
            environment: proxyEnvironment.merging(["PATH": path]) { _, new in new },
            stdoutLog: logURL
        )
        current.withLock { $0 = process }
        let deadline = ContinuousClock.now + timeout
        var last = "socket \(socketPath) not created yet"
        while true {
            guard process.isRunning else {
                throw Failure("\(name) exited (status \(process.exitStatus ?? -1)) before answering\n\(logTail())")
            }
            if FileManager.default.fileExists(atPath: socketPath) {
                let version = try await docker(["version", "--format", "{{.Server.Version}}"], timeout: .seconds(10))
                if version.succeeded { return }
                last = "docker version: status \(version.status): \(version.stderr)"
            }
            if ContinuousClock.now >= deadline {
                throw Failure("\(name) did not answer within \(timeout) (last: \(last))\n\(logTail())")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Stops the daemon by its PID (SIGTERM, then SIGKILL after `grace`; dockerd stops its
    /// containerd itself) and waits for it to exit; then SIGKILLs anything still running
    /// with an argument in ``directory`` (dockerd's containerd, if dockerd was killed),
    /// lazily unmounts anything mounted under ``directory`` in this namespace (there should
    /// be nothing: dockerd's mounts live in its own namespace), and releases ``proxy``.
    /// Idempotent. The directory itself is removed when the object goes away.
    public func stop(grace: Duration = .seconds(20)) async {
        let process = current.withLock { $0.take() }
        if let process { await process.stop(grace: grace) }
        await ProcessTable.killAll(withArgumentStartingWith: directory.path)
        await MountTable.unmountAll(under: directory.url)
        proxy.release()
    }

    /// Processes still running with an argument in ``directory`` (none once stopped).
    public func leftoverProcesses() -> [Int32] { ProcessTable.pids(withArgumentStartingWith: directory.path) }

    /// Mount points under ``directory`` visible here (none, ever: see the type's notes).
    public func leftoverMounts() -> [String] { MountTable.mountPoints(under: directory.url) }

    // MARK: - Logs

    /// The daemon's whole log.
    public func logText() -> String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// The tail of the daemon's log, for failure messages.
    public func logTail(lines: Int = 40) -> String {
        let tail = logText().split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
        return "--- \(name) log (\(logURL.path)) ---\n\(tail)"
    }

    private func logSize() -> UInt64 {
        ((try? FileManager.default.attributesOfItem(atPath: logURL.path))?[.size] as? NSNumber)?.uint64Value ?? 0
    }

    private func log(since offset: UInt64) -> String {
        guard let handle = try? FileHandle(forReadingFrom: logURL) else { return "" }
        defer { try? handle.close() }
        try? handle.seek(toOffset: offset)
        return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    }

    // MARK: - docker

    /// Runs `docker --host unix://SOCK <arguments>` with a private `DOCKER_CONFIG` and
    /// returns its result (a non-zero exit is not thrown; a timeout is).
    public func docker(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> ManagedProcess.CommandResult {
        var environment = proxyEnvironment
        environment["DOCKER_CONFIG"] = clientConfigDirectory.path
        environment["DOCKER_HOST"] = ""
        environment["DOCKER_CONTEXT"] = ""
        return try await ManagedProcess.run(
            dockerExecutable,
            arguments: ["--host", "unix://\(socketPath)"] + arguments,
            environment: environment,
            workingDirectory: directory.url,
            timeout: timeout)
    }

    /// Like ``docker(_:timeout:)`` but throws ``Failure`` (with the CLI's output and the
    /// daemon's log tail) on a non-zero exit.
    @discardableResult
    public func dockerSucceeding(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> ManagedProcess.CommandResult {
        let result = try await docker(arguments, timeout: timeout)
        guard result.succeeded else {
            throw Failure("docker \(arguments.joined(separator: " ")) failed with status \(result.status):\n"
                + "\(result.stdoutText)\(result.stderr)\n\(logTail(lines: 15))")
        }
        return result
    }

    /// `docker pull [--platform P] REFERENCE`. The result is returned as is — a failed pull
    /// is not thrown — with the CLI's output and what dockerd logged meanwhile (where a
    /// mirror's error message is: see ``ClientPull``).
    ///
    /// - Parameters:
    ///   - reference: As a user types it: `alpine:3.19` and `library/alpine:3.19` go to
    ///     Docker Hub, hence to its mirrors; `127.0.0.1:PORT/name:tag` goes to that registry.
    ///   - platform: `--platform` (`linux/arm64`); `nil`: the machine's.
    public func pull(_ reference: String, platform: String? = nil, timeout: Duration = .seconds(120)) async throws -> ClientPull {
        let offset = logSize()
        var arguments = ["pull"]
        if let platform { arguments += ["--platform", platform] }
        arguments.append(reference)
        let result = try await docker(arguments, timeout: timeout)
        return ClientPull(reference: reference, result: result, daemonLog: log(since: offset))
    }

    /// `docker image inspect REFERENCE`, decoded.
    public func inspectImage(_ reference: String) async throws -> Image {
        let result = try await dockerSucceeding(["image", "inspect", reference])
        let images = try JSONDecoder().decode([Image].self, from: result.stdout)
        guard let image = images.first else { throw Failure("docker image inspect \(reference): no image in \(result.stdoutText)") }
        return image
    }

    /// The image IDs dockerd holds (`docker image ls --quiet --no-trunc`).
    public func imageIDs() async throws -> Set<String> {
        let result = try await dockerSucceeding(["image", "ls", "--all", "--quiet", "--no-trunc"])
        return Set(result.stdoutText.split(whereSeparator: \.isNewline).map(String.init))
    }

    /// The registry settings dockerd runs with (`docker info`), e.g. to prove a
    /// `daemon.json` was read.
    public func registryConfig() async throws -> RegistryConfig {
        let result = try await dockerSucceeding(["info", "--format", "{{json .RegistryConfig}}"])
        return try JSONDecoder().decode(RegistryConfig.self, from: result.stdout)
    }
}
