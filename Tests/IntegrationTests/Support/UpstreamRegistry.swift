import Foundation
import Synchronization

/// A real registry for tests: Debian's `docker-registry` (CNCF distribution 2.8)
/// on `127.0.0.1:<free port>`, with filesystem storage in a temporary directory.
///
/// Files in ``directory``:
/// - `config.yml` — the generated configuration;
/// - `storage/` — ``storageRoot``, the filesystem driver's root;
/// - `access.log` — the combined-format access log (the registry's stdout), read by
///   ``requests()``;
/// - `registry.log` — the JSON application log (the registry's stderr).
///
/// Both logs are appended across ``restart()``. In ``Mode/proxy(remoteURL:)`` the
/// registry is distribution's pull-through cache of another registry (pushes are refused).
///
/// Use ``with(mode:name:_:)`` to have it stopped even when the body throws; `deinit`
/// stops a forgotten process as a safety net.
public final class UpstreamRegistry: Sendable {
    /// How the registry serves content.
    public enum Mode: Sendable, Equatable {
        /// A plain registry that accepts pushes.
        case local
        /// A pull-through cache of the registry at `remoteURL` (e.g. `http://127.0.0.1:5001`).
        /// Distribution 2.8 has no TTL setting: cached content is kept 7 days.
        case proxy(remoteURL: String)
    }

    /// How the registry authenticates clients (distribution's `auth` section). With
    /// either, `GET /v2/` answers 401 with a challenge, and that is what ``start(mode:name:port:extraYAML:auth:)``
    /// waits for.
    public enum Auth: Sendable, Equatable {
        /// `auth.token`: Bearer tokens from `realm`, signed by a key whose certificate
        /// (or one of whose chain certificates) is in the PEM file `rootCertBundle`; the
        /// token's `iss` must equal `issuer` and its `aud` must contain `service`. The
        /// challenge is `Bearer realm="<realm>",service="<service>"[,scope="…"]`. See
        /// ``TokenIssuer``.
        case token(realm: String, service: String, issuer: String, rootCertBundle: URL)
        /// `auth.htpasswd`: HTTP Basic against the bcrypt htpasswd file at `path`; the
        /// challenge is `Basic realm="<realm>"`. See ``HtpasswdFile``.
        case htpasswd(realm: String, path: URL)

        /// The top-level `auth:` YAML block.
        public var yaml: String {
            func quoted(_ value: String) -> String {
                "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            }
            switch self {
            case let .token(realm, service, issuer, rootCertBundle):
                return """
                    auth:
                      token:
                        realm: \(quoted(realm))
                        service: \(quoted(service))
                        issuer: \(quoted(issuer))
                        rootcertbundle: \(quoted(rootCertBundle.path))

                    """
            case let .htpasswd(realm, path):
                return """
                    auth:
                      htpasswd:
                        realm: \(quoted(realm))
                        path: \(quoted(path.path))

                    """
            }
        }
    }

    /// The mode it was started in.
    public let mode: Mode
    /// How clients authenticate (`nil`: anonymous, the default).
    public let auth: Auth?
    /// A short name for logs (`upstream`, `proxy`, ...).
    public let name: String
    /// The TCP port on 127.0.0.1; kept across ``restart()``.
    public let port: Int
    /// The temporary directory holding config, storage and logs.
    public let directory: TemporaryDirectory
    /// The filesystem storage driver's root directory.
    public let storageRoot: URL
    /// The generated `config.yml`.
    public let configURL: URL
    /// The access log (standard output of the registry).
    public let accessLogURL: URL
    /// The JSON application log (standard error of the registry).
    public let applicationLogURL: URL

    private let executable: URL
    private let current: Mutex<ManagedProcess?>

    /// `http://127.0.0.1:<port>`.
    public var url: String { "http://127.0.0.1:\(port)" }
    /// `127.0.0.1:<port>`, the form skopeo and image references use.
    public var hostPort: String { "127.0.0.1:\(port)" }

    /// The running process's id, `nil` after ``stop()``.
    public var pid: Int32? { current.withLock { $0?.isRunning == true ? $0?.pid : nil } }

    /// Whether a registry process is currently running (a SIGSTOPped one counts).
    public var isRunning: Bool { current.withLock { $0?.isRunning ?? false } }

    /// Locates `docker-registry`, failing with instructions if it is not installed.
    public static func locateBinary() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["MIRRORGATE_DOCKER_REGISTRY"] {
            return URL(fileURLWithPath: path)
        }
        guard let found = ManagedProcess.which("docker-registry") else {
            throw ManagedProcess.Failure(
                "docker-registry (CNCF distribution) is not installed. Run `make test`, which installs the test "
                    + "dependencies (apt-get install -y docker-registry skopeo), or install them yourself."
            )
        }
        return found
    }

    /// Starts a registry and waits until `GET /v2/` answers 200.
    ///
    /// - Parameters:
    ///   - mode: ``Mode/local`` (default) or a pull-through proxy.
    ///   - name: A label for logs and error messages.
    ///   - port: A fixed port, or `nil` for a free one.
    ///   - extraYAML: Top-level YAML appended to the generated config (keys must not
    ///     repeat the generated ones: `version`, `log`, `storage`, `http`, `health`, `proxy`,
    ///     and `auth` when `auth` is given).
    ///   - auth: Client authentication (`nil`: none). With it, readiness is `/v2/`
    ///     answering 401 instead of 200.
    public static func start(
        mode: Mode = .local,
        name: String = "upstream",
        port: Int? = nil,
        extraYAML: String = "",
        auth: Auth? = nil
    ) async throws -> UpstreamRegistry {
        let registry = try UpstreamRegistry(
            mode: mode, name: name, port: port ?? FreePort.allocate(), extraYAML: extraYAML, auth: auth)
        try await registry.launch()
        return registry
    }

    /// Starts a registry, runs `body`, and stops the registry whether or not `body` throws.
    public static func with<T>(
        mode: Mode = .local,
        name: String = "upstream",
        _ body: (UpstreamRegistry) async throws -> T
    ) async throws -> T {
        let registry = try await start(mode: mode, name: name)
        do {
            let result = try await body(registry)
            await registry.stop()
            return result
        } catch {
            await registry.stop()
            throw error
        }
    }

    private init(mode: Mode, name: String, port: Int, extraYAML: String, auth: Auth?) throws {
        self.executable = try Self.locateBinary()
        self.mode = mode
        self.auth = auth
        self.name = name
        self.port = port
        self.directory = try TemporaryDirectory(prefix: "mirrorgate-\(name)")
        self.storageRoot = try directory.subdirectory("storage")
        self.configURL = directory.appending("config.yml")
        self.accessLogURL = directory.appending("access.log")
        self.applicationLogURL = directory.appending("registry.log")
        self.current = Mutex(nil)
        try Self.renderConfig(mode: mode, port: port, storageRoot: storageRoot, extraYAML: extraYAML, auth: auth)
            .write(to: configURL, atomically: true, encoding: .utf8)
    }

    deinit {
        // ManagedProcess.deinit stops the child if it is still running.
        _ = current.withLock { $0.take() }
    }

    /// The configuration written to ``configURL``.
    public static func renderConfig(mode: Mode, port: Int, storageRoot: URL, extraYAML: String = "", auth: Auth? = nil) -> String {
        var yaml = """
            version: 0.1
            log:
              level: info
              formatter: json
              accesslog:
                disabled: false
            storage:
              filesystem:
                rootdirectory: \(storageRoot.path)
              delete:
                enabled: true
              maintenance:
                uploadpurging:
                  enabled: false
            http:
              addr: 127.0.0.1:\(port)
              secret: mirrorgate-integration-tests
            health:
              storagedriver:
                enabled: false

            """
        if case .proxy(let remoteURL) = mode {
            yaml += """
                proxy:
                  remoteurl: \(remoteURL)

                """
        }
        if let auth { yaml += auth.yaml }
        if !extraYAML.isEmpty { yaml += extraYAML + "\n" }
        return yaml
    }

    private func launch() async throws {
        let process = try ManagedProcess(
            name: name,
            executable: executable,
            arguments: ["serve", configURL.path],
            stdoutLog: accessLogURL,
            stderrLog: applicationLogURL
        )
        current.withLock { $0 = process }
        do {
            try await process.waitForHTTP("\(url)/v2/", expectStatus: auth == nil ? 200 : 401, timeout: .seconds(30))
        } catch {
            await process.stop()
            throw error
        }
    }

    // MARK: - Lifecycle

    /// Stops the registry (SIGTERM, then SIGKILL) and waits for it to exit. Idempotent.
    public func stop() async {
        guard let process = current.withLock({ $0.take() }) else { return }
        await process.stop()
    }

    /// Stops the registry if it runs and starts it again on the same port with the same
    /// storage and logs; waits until `/v2/` answers.
    public func restart() async throws {
        await stop()
        try await launch()
    }

    /// Sends `signal` to the registry process (e.g. `SIGSTOP` to make it hang,
    /// `SIGCONT` to resume, `SIGKILL` to crash it). A killed registry can be
    /// brought back with ``restart()``.
    public func kill(signal: Int32) {
        current.withLock { $0 }?.kill(signal: signal)
    }

    // MARK: - Access log

    /// Every request in the access log so far, oldest first.
    public func requests() -> [RegistryRequest] {
        RegistryRequest.parseLog((try? String(contentsOf: accessLogURL, encoding: .utf8)) ?? "")
    }

    /// The requests with `method` whose path equals `path` (query ignored).
    public func requests(method: String, path: String) -> [RegistryRequest] {
        requests().filter { $0.method == method && $0.path == path }
    }

    /// The manifest requests (GET and HEAD) for `repository`, optionally one reference.
    public func manifestRequests(repository: String, reference: String? = nil) -> [RegistryRequest] {
        requests().filter {
            $0.isManifest && $0.repository == repository && (reference == nil || $0.reference == reference)
        }
    }

    /// The blob requests (GET and HEAD) for `repository`, optionally one digest.
    public func blobRequests(repository: String, digest: String? = nil) -> [RegistryRequest] {
        requests().filter {
            $0.isBlob && $0.repository == repository && (digest == nil || $0.reference == digest)
        }
    }

    /// Empties the access log (safe while the registry runs: the log is opened `O_APPEND`).
    public func clearRequests() {
        if let handle = try? FileHandle(forWritingTo: accessLogURL) {
            try? handle.truncate(atOffset: 0)
            try? handle.close()
        }
    }

    /// Waits until at least `count` logged requests satisfy `predicate`, and returns them.
    /// The access log line is written just after the response, so use this rather
    /// than reading ``requests()`` right after a client call returns.
    @discardableResult
    public func waitForRequests(
        count: Int = 1,
        timeout: Duration = .seconds(5),
        where predicate: (RegistryRequest) -> Bool
    ) async throws -> [RegistryRequest] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let matching = requests().filter(predicate)
            if matching.count >= count { return matching }
            if ContinuousClock.now >= deadline {
                throw ManagedProcess.Failure(
                    "\(name): expected \(count) matching request(s) in the access log, found \(matching.count); log:\n"
                        + requests().map(\.description).joined(separator: "\n")
                )
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The tails of both logs, for failure messages.
    public func logTail(lines: Int = 40) -> String {
        current.withLock { $0 }?.logTail(lines: lines)
            ?? ((try? String(contentsOf: applicationLogURL, encoding: .utf8)) ?? "")
    }

    // MARK: - Storage layout

    /// The data file of blob `digest` (`sha256:<hex>`):
    /// `<storageRoot>/docker/registry/v2/blobs/sha256/<hex prefix 2>/<hex>/data`.
    /// Manifests are stored as blobs too. Overwrite it to corrupt what the registry
    /// serves: distribution 2.8 (no blob descriptor cache configured here) streams the
    /// file as is, with the original `Docker-Content-Digest`.
    public func blobPath(_ digest: String) -> URL {
        let parts = digest.split(separator: ":", maxSplits: 1)
        let algorithm = parts.count == 2 ? String(parts[0]) : "sha256"
        let hex = parts.count == 2 ? String(parts[1]) : digest
        return storageRoot
            .appendingPathComponent("docker/registry/v2/blobs/\(algorithm)/\(hex.prefix(2))/\(hex)/data")
    }

    /// The repository directory, `<storageRoot>/docker/registry/v2/repositories/<name>`.
    public func repositoryPath(_ repository: String) -> URL {
        storageRoot.appendingPathComponent("docker/registry/v2/repositories/\(repository)", isDirectory: true)
    }

    /// The file holding the digest a tag points at:
    /// `<repository>/_manifests/tags/<tag>/current/link` (content `sha256:<hex>`).
    public func tagLinkPath(repository: String, tag: String) -> URL {
        repositoryPath(repository).appendingPathComponent("_manifests/tags/\(tag)/current/link")
    }
}
