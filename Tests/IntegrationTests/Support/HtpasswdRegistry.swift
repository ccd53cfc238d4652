import Foundation

/// A bcrypt htpasswd file, as distribution's `auth.htpasswd` reads it (one `user:$2b$…`
/// line per user; distribution accepts only bcrypt).
///
/// Hashes are made with Python's standard `crypt` module (`METHOD_BLOWFISH`, cost 5 like
/// `htpasswd -B`; Python 3.11's crypt uses the system's libxcrypt, which has bcrypt) so no
/// extra package is needed; if that fails, with `htpasswd -nbB -C 5` from `apache2-utils`.
public enum HtpasswdFile {
    /// Writes `users` (name → password) to `url` as a bcrypt htpasswd file.
    public static func write(users: [String: String], to url: URL) async throws {
        var lines: [String] = []
        for (name, hash) in try await bcryptHashes(users) { lines.append("\(name):\(hash)") }
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
    }

    /// The bcrypt hash of each password, by user name (sorted by name).
    public static func bcryptHashes(_ users: [String: String]) async throws -> [(String, String)] {
        let sorted = users.sorted { $0.key < $1.key }
        guard !sorted.isEmpty else { return [] }
        if let python = ManagedProcess.which("python3") {
            let script = """
                import crypt, json, os, sys
                users = json.loads(os.environ["MIRRORGATE_HTPASSWD_USERS"])
                out = {}
                for name, password in users:
                    value = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))
                    if not value or not value.startswith("$2"):
                        sys.exit("no bcrypt in crypt(3)")
                    out[name] = value
                print(json.dumps(out))
                """
            let payload = try JSONSerialization.data(withJSONObject: sorted.map { [$0.key, $0.value] })
            let result = try await ManagedProcess.run(
                python, arguments: ["-W", "ignore", "-c", script],
                environment: ["MIRRORGATE_HTPASSWD_USERS": String(decoding: payload, as: UTF8.self)],
                timeout: .seconds(30))
            if result.succeeded,
               let table = try? JSONSerialization.jsonObject(with: result.stdout) as? [String: String],
               table.count == sorted.count {
                return sorted.compactMap { name, _ in table[name].map { (name, $0) } }
            }
        }
        guard let htpasswd = ManagedProcess.which("htpasswd") else {
            throw ManagedProcess.Failure(
                "cannot make bcrypt hashes: Python's crypt module has no bcrypt and htpasswd is not installed "
                    + "(apt-get install -y apache2-utils)")
        }
        var hashes: [(String, String)] = []
        for (name, password) in sorted {
            let result = try await ManagedProcess.run(htpasswd, arguments: ["-nbB", "-C", "5", name, password], timeout: .seconds(30))
            let line = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            guard result.succeeded, line.hasPrefix("\(name):$2") else {
                throw ManagedProcess.Failure("htpasswd -nbB failed for \(name): status \(result.status) \(result.stderr)")
            }
            hashes.append((name, String(line.dropFirst(name.count + 1))))
        }
        return hashes
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
