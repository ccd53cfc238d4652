import Foundation

/// A bcrypt htpasswd file made the way the README tells users to make one: Apache's
/// `htpasswd -cbB` for the first user and `htpasswd -bB` for each further one (package
/// apache2-utils, which `make test` installs). Its entries are `$2y$`, which is what the
/// gateway and distribution's `auth.htpasswd` must accept.
public enum HtpasswdFile {
    /// Writes `users` (name → password) to `url` (replacing it) at bcrypt cost `cost`
    /// (`htpasswd -B`'s default is 5).
    public static func write(users: [String: String], to url: URL, cost: Int = 5) async throws {
        let htpasswd = try tool()
        let scratch = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).new")
        try? FileManager.default.removeItem(at: scratch)
        for (index, (name, password)) in users.sorted(by: { $0.key < $1.key }).enumerated() {
            let flags = index == 0 ? "-cbB" : "-bB"
            let result = try await ManagedProcess.run(
                htpasswd, arguments: [flags, "-C", String(cost), scratch.path, name, password], timeout: .seconds(60))
            guard result.succeeded else {
                throw ManagedProcess.Failure("htpasswd \(flags) \(name) failed: status \(result.status) \(result.stderr)")
            }
        }
        // Renamed into place, so a gateway reloading on SIGHUP never reads half a file.
        guard rename(scratch.path, url.path) == 0 else {
            throw ManagedProcess.Failure("cannot rename \(scratch.path) to \(url.path): errno \(errno)")
        }
    }

    /// `user:$2y$…` for one user, as `htpasswd -nbB` prints it.
    public static func line(user: String, password: String, cost: Int = 5) async throws -> String {
        let result = try await ManagedProcess.run(try tool(), arguments: ["-nbB", "-C", String(cost), user, password], timeout: .seconds(60))
        let line = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.succeeded, line.hasPrefix("\(user):$2y$") else {
            throw ManagedProcess.Failure("htpasswd -nbB \(user) failed: status \(result.status) \(result.stderr)")
        }
        return line
    }

    static func tool() throws -> URL {
        guard let htpasswd = ManagedProcess.which("htpasswd") else {
            throw ManagedProcess.Failure("htpasswd is not installed (apt-get install -y apache2-utils; make test installs it)")
        }
        return htpasswd
    }
}

/// A registry with HTTP Basic auth: `docker-registry` with `auth.htpasswd` and a bcrypt
/// htpasswd file of the given users.
///
/// Every request without valid credentials, `/v2/` included, gets 401
/// `WWW-Authenticate: Basic realm="<realm>"` and an `UNAUTHORIZED` body. Any valid user
/// may pull and push every repository (htpasswd has no per-repository access).
public final class HtpasswdRegistry: Sendable {
    /// The registry.
    public let registry: UpstreamRegistry
    /// The users (name → password).
    public let users: [String: String]
    /// The Basic realm.
    public let realm: String
    /// Holds the htpasswd file.
    public let directory: TemporaryDirectory
    /// The htpasswd file.
    public let htpasswdURL: URL

    /// `http://127.0.0.1:<port>`.
    public var url: String { registry.url }
    /// `127.0.0.1:<port>`.
    public var hostPort: String { registry.hostPort }

    /// Writes the htpasswd file and starts the registry (waits for `/v2/` to answer 401).
    public static func start(
        users: [String: String],
        realm: String = "mirrorgate-basic-realm",
        mode: UpstreamRegistry.Mode = .local,
        name: String = "htpasswd-registry"
    ) async throws -> HtpasswdRegistry {
        let directory = try TemporaryDirectory(prefix: "htpasswd")
        let file = directory.appending("htpasswd")
        try await HtpasswdFile.write(users: users, to: file)
        let registry = try await UpstreamRegistry.start(mode: mode, name: name, auth: .htpasswd(realm: realm, path: file))
        return HtpasswdRegistry(registry: registry, users: users, realm: realm, directory: directory, htpasswdURL: file)
    }

    /// Starts it, runs `body`, and stops it whether or not `body` throws.
    public static func with<T>(
        users: [String: String],
        realm: String = "mirrorgate-basic-realm",
        _ body: (HtpasswdRegistry) async throws -> T
    ) async throws -> T {
        let registry = try await start(users: users, realm: realm)
        do {
            let result = try await body(registry)
            await registry.stop()
            return result
        } catch {
            await registry.stop()
            throw error
        }
    }

    private init(registry: UpstreamRegistry, users: [String: String], realm: String, directory: TemporaryDirectory, htpasswdURL: URL) {
        self.registry = registry
        self.users = users
        self.realm = realm
        self.directory = directory
        self.htpasswdURL = htpasswdURL
    }

    /// Stops the registry by PID. Idempotent.
    public func stop() async {
        await registry.stop()
    }

    /// `Authorization: Basic …` for `user` (with its password, unless one is given).
    public func basicAuthorization(user: String, password: String? = nil) -> (String, String) {
        let secret = password ?? users[user] ?? ""
        return ("Authorization", "Basic " + Data("\(user):\(secret)".utf8).base64EncodedString())
    }
}
