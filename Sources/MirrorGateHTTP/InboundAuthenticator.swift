import Crypto
import Foundation
import HummingbirdBcrypt
import Logging
import NIOPosix
import MirrorGateConfig
import RegistryModel
import Synchronization

/// Checks clients' HTTP Basic credentials against an htpasswd file of bcrypt entries
/// (`user:$2y$...`, as written by `htpasswd -B`).
///
/// bcrypt is slow by design (tens of milliseconds at cost 10), and pulling clients send their
/// credentials with every request, so a verified pair is remembered for ``cacheLifetime`` under
/// the SHA-256 of `user NUL password` (the password itself is never kept). ``reload()``
/// re-reads the file (SIGHUP) and forgets everything remembered.
public final class InboundAuthenticator: Sendable {
    public enum LoadError: Error, CustomStringConvertible {
        case unreadable(path: String, reason: String)
        case invalidLine(path: String, line: Int, reason: String)
        case empty(path: String)

        public var description: String {
            switch self {
            case .unreadable(let path, let reason): "auth.htpasswd: cannot read \(path): \(reason)"
            case .invalidLine(let path, let line, let reason): "auth.htpasswd: \(path) line \(line): \(reason)"
            case .empty(let path): "auth.htpasswd: \(path) has no users"
            }
        }
    }

    struct State {
        var hashes: [String: String]
        var verified: [SHA256Digest: ContinuousClock.Instant] = [:]
    }

    public let config: InboundAuthConfig
    public let cacheLifetime: Duration
    private let state: Mutex<State>
    private let logger: Logger

    public init(config: InboundAuthConfig, cacheLifetime: Duration = .seconds(300), logger: Logger) throws(LoadError) {
        self.config = config
        self.cacheLifetime = cacheLifetime
        self.logger = logger
        self.state = Mutex(State(hashes: try Self.load(config.htpasswdPath)))
    }

    /// Re-reads the htpasswd file; on failure the old users stay in force.
    public func reload() {
        do {
            let hashes = try Self.load(config.htpasswdPath)
            state.withLock { $0 = State(hashes: hashes) }
            logger.notice("htpasswd reloaded", metadata: ["users": "\(hashes.count)"])
        } catch {
            logger.error("htpasswd not reloaded; the previous users stay in force", metadata: ["error": "\(error)"])
        }
    }

    /// The user named by a valid `Authorization: Basic ...` header, or nil.
    public func authenticate(authorization: String?, now: ContinuousClock.Instant = .now) async -> String? {
        guard let (user, password) = Self.basicCredentials(authorization) else { return nil }
        var hasher = SHA256()
        hasher.update(data: Array(user.utf8))
        hasher.update(data: [0])
        hasher.update(data: Array(password.utf8))
        let key = hasher.finalize()
        let (hash, remembered) = state.withLock { s -> (String?, Bool) in
            let hash = s.hashes[user]
            if let at = s.verified[key], now - at < cacheLifetime { return (hash, true) }
            return (hash, false)
        }
        guard let hash else { return nil }
        if remembered { return user }
        // bcrypt takes tens of milliseconds: off the cooperative pool.
        let valid = (try? await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }) ?? false
        guard valid else { return nil }
        state.withLock { s in
            // Only pairs that still match the current file are remembered.
            guard s.hashes[user] == hash else { return }
            if s.verified.count >= 10_000 { s.verified.removeAll() }
            s.verified[key] = now
        }
        return user
    }

    /// The challenge sent with a 401.
    public var challenge: String { "Basic realm=\"\(config.realm)\", charset=\"UTF-8\"" }

    /// Splits `Basic base64(user:password)`; nil for any other form.
    static func basicCredentials(_ header: String?) -> (String, String)? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic", parts[1].utf8.count <= 4096,
              let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
              let text = String(data: data, encoding: .utf8),
              let colon = text.firstIndex(of: ":")
        else { return nil }
        let user = String(text[..<colon])
        let password = String(text[text.index(after: colon)...])
        guard !user.isEmpty else { return nil }
        return (user, password)
    }

    /// Parses an htpasswd file: `user:hash` per line, `#` comments and blank lines ignored.
    /// Only bcrypt hashes are accepted (`$2a$`, `$2b$`, `$2y$`): MD5-crypt, SHA-1 and plain
    /// entries are refused with the line named.
    static func load(_ path: String) throws(LoadError) -> [String: String] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        return try parse(text, path: path)
    }

    /// The hash in the form the bcrypt implementation checks.
    ///
    /// `htpasswd -B` writes `$2y$` (crypt_blowfish's marker for its corrected implementation),
    /// which HummingbirdBcrypt's OpenBSD code does not know; `$2y$` and `$2b$` are the same
    /// algorithm with the same output, so the entry is checked as `$2b$`. (`$2a$` differs from
    /// `$2b$` only for passwords over 255 bytes, which are refused before any check.)
    static func normalized(_ hash: String) -> String {
        hash.hasPrefix("$2y$") ? "$2b$" + hash.dropFirst(4) : hash
    }

    static func parse(_ text: String, path: String) throws(LoadError) -> [String: String] {
        var hashes: [String: String] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else {
                throw .invalidLine(path: path, line: index + 1, reason: "expected user:bcrypt-hash")
            }
            let user = String(line[..<colon])
            let hash = String(line[line.index(after: colon)...])
            guard !user.isEmpty else { throw .invalidLine(path: path, line: index + 1, reason: "empty user name") }
            guard ["$2a$", "$2b$", "$2y$"].contains(where: { hash.hasPrefix($0) }), hash.count == 60 else {
                throw .invalidLine(path: path, line: index + 1, reason: "user \(user): only bcrypt entries are accepted (htpasswd -B)")
            }
            guard hashes[user] == nil else { throw .invalidLine(path: path, line: index + 1, reason: "user \(user) appears twice") }
            hashes[user] = normalized(hash)
        }
        guard !hashes.isEmpty else { throw .empty(path: path) }
        return hashes
    }
}
