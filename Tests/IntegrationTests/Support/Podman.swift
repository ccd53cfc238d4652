import Foundation

/// A private podman (Debian's `podman` 4.3) for tests. podman pulls with containers/image,
/// the library CRI-O uses, and reads the same `registries.conf`; unlike CRI-O it needs no
/// kubelet to drive it.
///
/// Every command runs as
///
///     podman --root <dir>/root --runroot <dir>/runroot --storage-driver vfs
///       --cgroup-manager cgroupfs --events-backend file --tmpdir <dir>/libpod
///       --network-config-dir <dir>/networks --volumepath <dir>/volumes <arguments>
///
/// with everything of its own under a fresh temporary directory:
///
/// - `root/`, `runroot/` — containers/storage (vfs: every layer is a plain directory under
///   `root/vfs/dir/`; nothing is mounted to pull);
/// - `libpod/` — libpod's state and events (instead of `/run/libpod`), `networks/` — CNI
///   configuration (instead of `/etc/cni/net.d`), `volumes/`;
/// - `registries.conf` (`CONTAINERS_REGISTRIES_CONF`), `storage.conf`
///   (`CONTAINERS_STORAGE_CONF`), `containers.conf` (`CONTAINERS_CONF`: the only one read),
///   `policy.json` (`--signature-policy` for pulls: accept anything, signatures are not
///   what these tests are about);
/// - `home/`, `run/` (`XDG_RUNTIME_DIR`), `config/`, `tmp/` (`TMPDIR`, where layers are
///   staged), `auth.json` (`REGISTRY_AUTH_FILE`: no credentials);
/// - `var-lib/` and `no-drop-ins/` — see below.
///
/// As root, containers/image keeps its blob info cache in
/// `/var/lib/containers/cache/blob-info-cache-v1.boltdb` whatever the flags, and
/// registries.conf drop-ins from `/etc/containers/registries.conf.d` are read on top of
/// `CONTAINERS_REGISTRIES_CONF`. So podman runs in a private mount namespace
/// (`unshare --mount`, one per command) with `var-lib/` bind-mounted over `/var/lib` and the
/// empty `no-drop-ins/` over `/etc/containers/registries.conf.d` (if it exists): the cache
/// lands in the temporary directory and only ``registriesConfURL`` configures registries.
///
/// `HTTP_PROXY`/`HTTPS_PROXY` are ``proxy``, a closed local port, with
/// `NO_PROXY=127.0.0.1,localhost`: a mirror on 127.0.0.1 is reached directly, and the
/// fallback to the registry itself after every mirror failed (containers/image always falls
/// back) fails at once with `proxyconnect tcp: … connection refused` instead of reaching
/// the internet. podman 4.3 retries a failed pull three times, a second apart, so a pull
/// that is meant to fail takes about three seconds.
public final class Podman: Sendable {
    /// A failure of a podman command, with details.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong.
        public let description: String
        /// Creates a failure with a message.
        public init(_ description: String) { self.description = description }
    }

    /// What `podman image inspect` reports about an image.
    public struct Image: Sendable, Decodable {
        /// The image ID: the hex digest of the image config, without `sha256:`.
        public let id: String
        /// The digest of the manifest podman pulled by tag: for a multi-platform image,
        /// the index / manifest list.
        public let digest: String
        /// `registry/name@sha256:…` for every manifest digest podman knows the image by:
        /// for a multi-platform image both the index and the chosen platform's manifest.
        public let repoDigests: [String]
        /// `registry/name:tag` entries, fully qualified (`docker.io/library/alpine:3.19`).
        public let repoTags: [String]
        /// `amd64`, `arm64`, …
        public let architecture: String
        /// `linux`.
        public let os: String
        /// The layers' diff IDs, bottom first.
        public let layers: [String]

        private enum CodingKeys: String, CodingKey {
            case id = "Id", digest = "Digest", repoDigests = "RepoDigests", repoTags = "RepoTags"
            case architecture = "Architecture", os = "Os", rootFS = "RootFS"
        }
        private struct RootFS: Decodable {
            let layers: [String]?
            private enum CodingKeys: String, CodingKey { case layers = "Layers" }
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = try container.decode(String.self, forKey: .id)
            digest = try container.decode(String.self, forKey: .digest)
            repoDigests = try container.decodeIfPresent([String].self, forKey: .repoDigests) ?? []
            repoTags = try container.decodeIfPresent([String].self, forKey: .repoTags) ?? []
            architecture = try container.decode(String.self, forKey: .architecture)
            os = try container.decode(String.self, forKey: .os)
            layers = try container.decodeIfPresent(RootFS.self, forKey: .rootFS)?.layers ?? []
        }
    }

    /// The temporary directory holding everything (removed when the object goes away).
    public let directory: TemporaryDirectory
    /// `--root` (containers/storage's graph root).
    public let graphRoot: URL
    /// `--runroot`.
    public let runRoot: URL
    /// The `registries.conf` every command uses.
    public let registriesConfURL: URL
    /// The `storage.conf` (vfs, ``graphRoot``, ``runRoot``).
    public let storageConfURL: URL
    /// The `containers.conf` (cgroupfs, file events).
    public let containersConfURL: URL
    /// The signature policy for pulls (accept anything).
    public let policyURL: URL
    /// Bind-mounted over `/var/lib` for every command.
    public let varLibDirectory: URL
    /// The closed port that is podman's `HTTP_PROXY` and `HTTPS_PROXY`.
    public let proxy: ClosedPort
    /// The `podman` executable.
    public let executable: URL

    private let unshareExecutable: URL
    private let noDropInsDirectory: URL

    /// Finds podman (`$MIRRORGATE_PODMAN` first), failing with instructions if it is not installed.
    public static func locate() throws -> URL {
        let path = ProcessInfo.processInfo.environment["MIRRORGATE_PODMAN"].map { URL(fileURLWithPath: $0) }
        guard let executable = path ?? ManagedProcess.which("podman") else {
            throw Failure(
                "podman is not installed. Run `make test`, which installs the test dependencies "
                    + "(apt-get install -y podman), or install it yourself."
            )
        }
        return executable
    }

    /// Sets up a private podman whose only registry configuration is `registriesConf`
    /// (the text of a `registries.conf`).
    public init(registriesConf: String) throws {
        executable = try Self.locate()
        guard let unshare = ManagedProcess.which("unshare") else { throw Failure("unshare (util-linux) is not installed") }
        unshareExecutable = unshare
        directory = try TemporaryDirectory(prefix: "mirrorgate-podman")
        graphRoot = try directory.subdirectory("root")
        runRoot = try directory.subdirectory("runroot")
        varLibDirectory = try directory.subdirectory("var-lib")
        noDropInsDirectory = try directory.subdirectory("no-drop-ins")
        for name in ["libpod", "networks", "volumes", "home", "run", "config", "tmp"] {
            _ = try directory.subdirectory(name)
        }
        registriesConfURL = directory.appending("registries.conf")
        storageConfURL = directory.appending("storage.conf")
        containersConfURL = directory.appending("containers.conf")
        policyURL = directory.appending("policy.json")
        proxy = try ClosedPort()
        try registriesConf.write(to: registriesConfURL, atomically: true, encoding: .utf8)
        try """
            [storage]
            driver = "vfs"
            graphroot = "\(graphRoot.path)"
            runroot = "\(runRoot.path)"

            """.write(to: storageConfURL, atomically: true, encoding: .utf8)
        try """
            [engine]
            cgroup_manager = "cgroupfs"
            events_logger = "file"

            """.write(to: containersConfURL, atomically: true, encoding: .utf8)
        try #"{"default": [{"type": "insecureAcceptAnything"}]}"#.write(to: policyURL, atomically: true, encoding: .utf8)
        // podman 4.3 refuses to pull when REGISTRY_AUTH_FILE names a missing file.
        try #"{"auths": {}}"#.write(to: directory.appending("auth.json"), atomically: true, encoding: .utf8)
    }

    /// Runs `body` with a private podman and removes everything it made afterwards,
    /// whether or not `body` throws.
    public static func with<T>(registriesConf: String, _ body: (Podman) async throws -> T) async throws -> T {
        let podman = try Podman(registriesConf: registriesConf)
        do {
            let result = try await body(podman)
            await podman.cleanUp()
            return result
        } catch {
            await podman.cleanUp()
            throw error
        }
    }

    /// SIGKILLs anything still running with an argument in ``directory`` (nothing should
    /// be: podman pulls start no helper process), lazily unmounts anything mounted under it
    /// here (nothing should be: podman's namespace dies with it), and releases ``proxy``.
    /// The directory itself is removed when the object goes away.
    public func cleanUp() async {
        await ProcessTable.killAll(withArgumentStartingWith: directory.path)
        await MountTable.unmountAll(under: directory.url)
        proxy.release()
    }

    /// Processes still running with an argument in ``directory``.
    public func leftoverProcesses() -> [Int32] { ProcessTable.pids(withArgumentStartingWith: directory.path) }

    /// Mount points under ``directory`` visible here.
    public func leftoverMounts() -> [String] { MountTable.mountPoints(under: directory.url) }

    // MARK: - Running

    /// The environment of every podman command.
    public var environment: [String: String] {
        let path = (ProcessInfo.processInfo.environment["PATH"].map { $0 + ":" } ?? "") + "/usr/sbin:/usr/bin:/sbin:/bin"
        return [
            "PATH": path,
            "HOME": directory.appending("home").path,
            "XDG_RUNTIME_DIR": directory.appending("run").path,
            "XDG_CONFIG_HOME": directory.appending("config").path,
            "XDG_DATA_HOME": directory.appending("home/.local/share").path,
            "TMPDIR": directory.appending("tmp").path,
            "CONTAINERS_REGISTRIES_CONF": registriesConfURL.path,
            "CONTAINERS_STORAGE_CONF": storageConfURL.path,
            "CONTAINERS_CONF": containersConfURL.path,
            "REGISTRY_AUTH_FILE": directory.appending("auth.json").path,
            "HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url, "http_proxy": proxy.url, "https_proxy": proxy.url,
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        ]
    }

    /// Runs `podman <global flags> <arguments>` in its own mount namespace and returns its
    /// result (a non-zero exit is not thrown; a timeout is).
    public func podman(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> ManagedProcess.CommandResult {
        let script = #"""
            mount --bind "$1" /var/lib || exit 125
            if [ -d /etc/containers/registries.conf.d ]; then mount --bind "$2" /etc/containers/registries.conf.d || exit 125; fi
            shift 2
            exec "$@"
            """#
        let global = [
            "--root", graphRoot.path,
            "--runroot", runRoot.path,
            "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs",
            "--events-backend", "file",
            "--tmpdir", directory.appending("libpod").path,
            "--network-config-dir", directory.appending("networks").path,
            "--volumepath", directory.appending("volumes").path,
        ]
        return try await ManagedProcess.run(
            unshareExecutable,
            arguments: ["--mount", "--propagation", "private", "/bin/sh", "-c", script, "mirrorgate-podman",
                        varLibDirectory.path, noDropInsDirectory.path, executable.path] + global + arguments,
            environment: environment,
            workingDirectory: directory.url,
            timeout: timeout)
    }

    /// Like ``podman(_:timeout:)`` but throws ``Failure`` (with podman's output) on a
    /// non-zero exit.
    @discardableResult
    public func podmanSucceeding(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> ManagedProcess.CommandResult {
        let result = try await podman(arguments, timeout: timeout)
        guard result.succeeded else {
            throw Failure("podman \(arguments.joined(separator: " ")) failed with status \(result.status):\n\(result.stdoutText)\(result.stderr)")
        }
        return result
    }

    /// `podman [--log-level debug] pull --signature-policy POLICY [--platform P] REFERENCE`.
    /// The result is returned as is — a failed pull is not thrown.
    ///
    /// - Parameters:
    ///   - reference: Fully qualified (`docker.io/library/app:v1`, `ghcr.io/org/tool:v1`), so
    ///     that the registry is chosen by ``registriesConfURL`` alone.
    ///   - platform: `--platform` (`linux/arm64`); `nil`: the machine's.
    ///   - debug: `--log-level debug`: the output then lists every HTTP request podman
    ///     makes (`GET http://127.0.0.1:PORT/v2/docker.io/library/app/manifests/v1`).
    public func pull(_ reference: String, platform: String? = nil, debug: Bool = false, timeout: Duration = .seconds(120)) async throws -> ClientPull {
        var arguments = debug ? ["--log-level", "debug"] : []
        arguments += ["pull", "--signature-policy", policyURL.path]
        if let platform { arguments += ["--platform", platform] }
        arguments.append(reference)
        return ClientPull(reference: reference, result: try await podman(arguments, timeout: timeout))
    }

    /// `podman image inspect REFERENCE`, decoded.
    public func inspectImage(_ reference: String) async throws -> Image {
        let result = try await podmanSucceeding(["image", "inspect", reference])
        let images = try JSONDecoder().decode([Image].self, from: result.stdout)
        guard let image = images.first else { throw Failure("podman image inspect \(reference): no image in \(result.stdoutText)") }
        return image
    }

    /// The IDs of every image in the store (`podman images --all --quiet --no-trunc`),
    /// `sha256:…`.
    public func imageIDs() async throws -> Set<String> {
        let result = try await podmanSucceeding(["images", "--all", "--quiet", "--no-trunc"])
        return Set(result.stdoutText.split(whereSeparator: \.isNewline).map(String.init))
    }
}
