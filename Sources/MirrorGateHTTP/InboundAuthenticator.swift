import CoreMetrics
import Crypto
import Foundation
import Logging
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
///
/// Against guessing and floods: checks run on ``BcryptPool``'s own bounded threads, never on
/// the pool that reads cached blobs; an address with `auth.max_failures` failures within
/// `auth.failure_window` is refused without a check; an unknown user is checked against a
/// dummy hash of the file's usual cost, so it takes as long as a known one; and a password
/// bcrypt would truncate (a NUL byte, or more than 72 bytes) is refused without a check.
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

    /// What a request's credentials amount to.
    public enum Outcome: Sendable, Equatable {
        /// Valid credentials of this user.
        case authenticated(String)
        /// No credentials, or wrong ones: 401.
        case rejected
        /// Too many failures from this address lately: 429, retry after this long.
        case throttled(retryAfter: Duration)
        /// Every bcrypt slot is taken: 429, retry shortly.
        case busy
    }

    /// bcrypt reads its key as a C string of at most 72 bytes: anything after a NUL or past
    /// byte 72 would be ignored, so such passwords are refused instead.
    static let maxPasswordBytes = 72

    struct Users {
        var hashes: [String: String]
        /// Checked for unknown users, at the cost most entries use.
        var dummyHash: String
    }

    struct State {
        var users: Users
        var verified: [SHA256Digest: ContinuousClock.Instant] = [:]
        var failures: AuthFailureLimiter
    }

    public let config: InboundAuthConfig
    public let cacheLifetime: Duration
    let pool: BcryptPool
    private let state: Mutex<State>
    private let logger: Logger

    public convenience init(config: InboundAuthConfig, cacheLifetime: Duration = .seconds(300), logger: Logger) throws(LoadError) {
        try self.init(config: config, cacheLifetime: cacheLifetime, pool: BcryptPool(), logger: logger)
    }

    init(config: InboundAuthConfig, cacheLifetime: Duration = .seconds(300), pool: BcryptPool, logger: Logger) throws(LoadError) {
        self.config = config
        self.cacheLifetime = cacheLifetime
        self.pool = pool
        self.logger = logger
        let users = Self.users(try Self.load(config.htpasswdPath))
        self.state = Mutex(State(users: users, failures: AuthFailureLimiter(limit: config.maxFailures, window: config.failureWindow)))
    }

    /// Re-reads the htpasswd file; on failure the old users stay in force.
    public func reload() {
        do {
            let users = Self.users(try Self.load(config.htpasswdPath))
            state.withLock { s in
                s.users = users
                s.verified = [:]
            }
            logger.notice("htpasswd reloaded", metadata: ["users": "\(users.hashes.count)"])
        } catch {
            logger.error("htpasswd not reloaded; the previous users stay in force", metadata: ["error": "\(error)"])
        }
    }

    /// Whether the htpasswd file currently has `user`.
    public func knows(user: String) -> Bool {
        state.withLock { $0.users.hashes[user] != nil }
    }

    /// Checks bcrypt ran so far, for tests.
    var verifications: Int { pool.verifications }

    var dummyHashForTests: String { state.withLock { $0.users.dummyHash } }

    /// What a request's `Authorization` header amounts to, for a client at `client` (the key
    /// ``AuthFailureLimiter/clientKey(_:)`` makes of its address).
    public func authenticate(authorization: String?, client: String = "unknown", now: ContinuousClock.Instant = .now) async -> Outcome {
        let outcome = await check(authorization: authorization, client: client, now: now)
        let label = switch outcome {
        case .authenticated: "accepted"
        case .rejected: authorization == nil ? "missing" : "rejected"
        case .throttled: "throttled"
        case .busy: "busy"
        }
        Counter(label: "mirrorgate_auth_attempts_total", dimensions: [("outcome", label)]).increment()
        return outcome
    }

    private func check(authorization: String?, client: String, now: ContinuousClock.Instant) async -> Outcome {
        guard let (user, password) = Self.basicCredentials(authorization) else { return .rejected }
        guard !password.utf8.contains(0), password.utf8.count <= Self.maxPasswordBytes else {
            state.withLock { $0.failures.recordFailure(client: client, now: now) }
            return .rejected
        }
        var hasher = SHA256()
        hasher.update(data: Array(user.utf8))
        hasher.update(data: [0])
        hasher.update(data: Array(password.utf8))
        let key = hasher.finalize()
        enum Next { case remembered, refuse(Duration), verify(hash: String, known: Bool) }
        let next = state.withLock { s -> Next in
            let hash = s.users.hashes[user]
            // Remembered pairs are successes already made: never throttled.
            if hash != nil, let at = s.verified[key], now - at < cacheLifetime { return .remembered }
            if let wait = s.failures.retryAfter(client: client, now: now) { return .refuse(wait) }
            return .verify(hash: hash ?? s.users.dummyHash, known: hash != nil)
        }
        let hash: String
        let known: Bool
        switch next {
        case .remembered: return .authenticated(user)
        case .refuse(let wait): return .throttled(retryAfter: wait)
        case .verify(let h, let k): (hash, known) = (h, k)
        }
        guard let matches = await pool.verify(password, hash: hash) else { return .busy }
        guard matches, known else {
            state.withLock { $0.failures.recordFailure(client: client, now: now) }
            return .rejected
        }
        state.withLock { s in
            // Only pairs that still match the current file are remembered.
            guard s.users.hashes[user] == hash else { return }
            if s.verified.count >= 10_000 { s.verified.removeAll() }
            s.verified[key] = now
        }
        return .authenticated(user)
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

    /// The users of a parsed file, with a dummy hash at the cost most of them use (the higher
    /// one on a tie), so an unknown user's check costs what a typical known user's does.
    static func users(_ hashes: [String: String]) -> Users {
        var costs: [UInt8: Int] = [:]
        for hash in hashes.values {
            if let cost = UInt8(hash.dropFirst(4).prefix(2)) { costs[cost, default: 0] += 1 }
        }
        let cost = costs.max { $0.value == $1.value ? $0.key < $1.key : $0.value < $1.value }?.key ?? 10
        return Users(hashes: hashes, dummyHash: BcryptPool.dummyHash(cost: cost))
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
