import Foundation

/// Drives `skopeo` (1.9) against registries on 127.0.0.1: push fixtures, pull images
/// into layouts, read raw manifests.
///
/// Every invocation is isolated from the machine's configuration: `HOME`,
/// `XDG_RUNTIME_DIR` and `XDG_CONFIG_HOME` point into a private temporary directory (no
/// `~/.docker/config.json`, no `auth.json`), `CONTAINERS_REGISTRIES_CONF` points to an
/// empty registries.conf, `--registries.d` to an empty directory, `--insecure-policy`
/// skips `policy.json`, credentials are disabled (`--src-no-creds` / `--dest-no-creds`)
/// and TLS verification is off, which makes skopeo speak plain HTTP to `host:port`.
///
/// Copies always pass `--preserve-digests`: skopeo must not recompress or convert
/// anything, and fails instead of silently changing a digest.
public struct Skopeo: Sendable {
    /// A skopeo run that exited non-zero.
    public struct Failure: Error, CustomStringConvertible {
        /// The arguments given to skopeo.
        public let arguments: [String]
        /// The exit status.
        public let status: Int32
        /// skopeo's standard error.
        public let stderr: String
        public var description: String {
            "skopeo \(arguments.joined(separator: " ")) failed with status \(status):\n\(stderr)"
        }
    }

    /// The `skopeo` binary.
    public let executable: URL
    /// Private home / config directory for skopeo.
    public let home: TemporaryDirectory
    /// Passed as `--command-timeout`; the process is also killed a little after it.
    public let commandTimeout: Duration

    /// Finds skopeo, failing with instructions if it is not installed.
    public static func locate(commandTimeout: Duration = .seconds(120)) throws -> Skopeo {
        let path = ProcessInfo.processInfo.environment["MIRRORGATE_SKOPEO"].map { URL(fileURLWithPath: $0) }
        guard let executable = path ?? ManagedProcess.which("skopeo") else {
            throw ManagedProcess.Failure(
                "skopeo is not installed. Run `make test`, which installs the test dependencies "
                    + "(apt-get install -y docker-registry skopeo), or install them yourself."
            )
        }
        return try Skopeo(executable: executable, commandTimeout: commandTimeout)
    }

    /// Uses the skopeo at `executable`.
    public init(executable: URL, commandTimeout: Duration = .seconds(120)) throws {
        self.executable = executable
        self.commandTimeout = commandTimeout
        self.home = try TemporaryDirectory(prefix: "mirrorgate-skopeo")
        _ = try home.subdirectory("registries.d")
        _ = try home.subdirectory("run")
        _ = try home.subdirectory("config")
        _ = try home.subdirectory("tmp")
        try "unqualified-search-registries = []\n".write(
            to: home.appending("registries.conf"), atomically: true, encoding: .utf8)
    }

    // MARK: - Running

    /// Runs `skopeo <global flags> <arguments>`; throws ``Failure`` on a non-zero exit.
    @discardableResult
    public func run(_ arguments: [String]) async throws -> ManagedProcess.CommandResult {
        let seconds = Int(commandTimeout.components.seconds)
        let full = [
            "--insecure-policy",
            "--registries.d", home.appending("registries.d").path,
            "--tmpdir", home.appending("tmp").path,
            "--command-timeout", "\(seconds)s",
        ] + arguments
        let environment = [
            "HOME": home.path,
            "XDG_RUNTIME_DIR": home.appending("run").path,
            "XDG_CONFIG_HOME": home.appending("config").path,
            "CONTAINERS_REGISTRIES_CONF": home.appending("registries.conf").path,
            "REGISTRY_AUTH_FILE": home.appending("run/auth.json").path,
            "http_proxy": "", "https_proxy": "", "HTTP_PROXY": "", "HTTPS_PROXY": "",
            "no_proxy": "*", "NO_PROXY": "*",
        ]
        let result = try await ManagedProcess.run(
            executable, arguments: full, environment: environment, timeout: commandTimeout + .seconds(15))
        guard result.succeeded else {
            throw Failure(arguments: arguments, status: result.status, stderr: result.stderr)
        }
        return result
    }

    /// `docker://host:port/repository:tag` or `docker://host:port/repository@sha256:…`.
    public static func dockerReference(hostPort: String, repository: String, reference: String) -> String {
        let separator = reference.contains(":") ? "@" : ":"
        return "docker://\(hostPort)/\(repository)\(separator)\(reference)"
    }

    // MARK: - Push

    /// Pushes every manifest and blob of `fixture` (all platforms) to
    /// `hostPort/repository:tag` (the fixture's tag by default), byte for byte.
    public func push(_ fixture: ImageFixture, to hostPort: String, repository: String, tag: String? = nil) async throws {
        try await run([
            "copy", "--all", "--preserve-digests",
            "--dest-tls-verify=false", "--dest-no-creds",
            fixture.sourceReference,
            Self.dockerReference(hostPort: hostPort, repository: repository, reference: tag ?? fixture.tag),
        ])
    }

    // MARK: - Pull

    /// Pulls `hostPort/repository` at `reference` (a tag, or a `sha256:` digest) into a
    /// layout and verifies it (see ``VerifiedLayout``).
    ///
    /// - Parameters:
    ///   - hostPort: Any registry, e.g. a gateway: `127.0.0.1:PORT`.
    ///   - format: ``ImageFixture/LayoutFormat/dir`` (default) keeps any manifest type
    ///     byte for byte; ``ImageFixture/LayoutFormat/oci`` can only hold OCI media types
    ///     (skopeo refuses to store Docker manifests there without converting them).
    ///   - platform: `nil` copies every platform (`--all`); otherwise only the image for
    ///     that platform is copied (`--override-os/arch/variant`, as `docker pull` would),
    ///     and the top of the layout is that platform's manifest.
    ///   - directory: Where to write (must not exist yet); default: a new temporary
    ///     directory kept alive by the returned value.
    public func pull(
        from hostPort: String,
        repository: String,
        reference: String,
        format: ImageFixture.LayoutFormat = .dir,
        platform: ContentDescriptor.Platform? = nil,
        into directory: URL? = nil
    ) async throws -> VerifiedLayout {
        var storage: TemporaryDirectory?
        let target: URL
        if let directory {
            target = directory
        } else {
            let temporary = try TemporaryDirectory(prefix: "mirrorgate-pull")
            storage = temporary
            target = temporary.appending("layout", isDirectory: true)
        }
        let destination = format == .oci ? "oci:\(target.path):pulled" : "dir:\(target.path)"
        var arguments: [String] = []
        if let platform {
            arguments += ["--override-os", platform.os, "--override-arch", platform.architecture]
            if let variant = platform.variant { arguments += ["--override-variant", variant] }
        }
        arguments += ["copy", "--preserve-digests", "--src-tls-verify=false", "--src-no-creds"]
        if platform == nil { arguments.append("--all") }
        arguments += [Self.dockerReference(hostPort: hostPort, repository: repository, reference: reference), destination]
        try await run(arguments)
        return try VerifiedLayout(verifying: target, storage: storage)
    }

    // MARK: - Inspect

    /// The raw top manifest at `reference` (`skopeo inspect --raw`), byte for byte;
    /// with `config: true`, the raw image config of the platform skopeo picks.
    public func inspectRaw(hostPort: String, repository: String, reference: String, config: Bool = false) async throws -> Data {
        var arguments = ["inspect", "--raw", "--tls-verify=false", "--no-creds"]
        if config { arguments.append("--config") }
        arguments.append(Self.dockerReference(hostPort: hostPort, repository: repository, reference: reference))
        return try await run(arguments).stdout
    }

    // MARK: - Layouts

    /// Recomputes the SHA-256 of every content file of the layout at `directory`
    /// (OCI or `dir:`), checks it against the file's name and every reference's size,
    /// and returns the digests found. Throws ``VerifiedLayout/Failure`` on any mismatch.
    public static func verifyLayout(_ directory: URL) throws -> VerifiedLayout {
        try VerifiedLayout(verifying: directory)
    }
}
