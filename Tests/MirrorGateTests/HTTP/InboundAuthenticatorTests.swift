import Foundation
import Logging
@testable import MirrorGateHTTP
import MirrorGateConfig
import Testing

@Suite("InboundAuthenticator")
struct InboundAuthenticatorTests {
    static func header(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    static func file(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("htpasswd-\(UUID().uuidString)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func authenticator(_ users: [(String, String)], cost: Int = 5, maxFailures: Int = 20, pool: BcryptPool = BcryptPool()) throws -> (InboundAuthenticator, String) {
        let path = try file(try HtpasswdTool.file(users, cost: cost))
        let config = InboundAuthConfig(htpasswdPath: path, maxFailures: maxFailures, failureWindow: .seconds(60))
        return (try InboundAuthenticator(config: config, pool: pool, logger: Logger(label: "test")), path)
    }

    /// The entries `htpasswd -B` writes are `$2y$`; they used to be refused (401 for the right
    /// password) because the bcrypt code only knows `$2a$`/`$2b$`.
    @Test func acceptsOnlyTheRightPassword() async throws {
        let text = try HtpasswdTool.file([("ci", "s3cret"), ("ops", "other")])
        #expect(text.contains("ci:$2y$05$"))
        let path = try Self.file(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let auth = try InboundAuthenticator(config: .init(htpasswdPath: path), logger: Logger(label: "test"))
        #expect(await auth.authenticate(authorization: Self.header("ci", "s3cret")) == .authenticated("ci"))
        // Remembered pairs are still checked against the password.
        #expect(await auth.authenticate(authorization: Self.header("ci", "s3cret")) == .authenticated("ci"))
        #expect(await auth.authenticate(authorization: Self.header("ci", "s3cre")) == .rejected)
        #expect(await auth.authenticate(authorization: Self.header("ops", "s3cret")) == .rejected)
        #expect(await auth.authenticate(authorization: Self.header("nobody", "s3cret")) == .rejected)
        #expect(await auth.authenticate(authorization: nil) == .rejected)
        #expect(await auth.authenticate(authorization: "Bearer abc") == .rejected)
        #expect(await auth.authenticate(authorization: "Basic !!!notbase64") == .rejected)
        #expect(await auth.authenticate(authorization: "Basic " + Data("nocolon".utf8).base64EncodedString()) == .rejected)
        #expect(auth.challenge == "Basic realm=\"MirrorGate\", charset=\"UTF-8\"")
    }

    @Test func reloadReplacesUsersAndForgetsRememberedPairs() async throws {
        let path = try Self.file(try HtpasswdTool.file([("ci", "one")]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let auth = try InboundAuthenticator(config: .init(htpasswdPath: path), logger: Logger(label: "test"))
        #expect(await auth.authenticate(authorization: Self.header("ci", "one")) == .authenticated("ci"))
        try HtpasswdTool.file([("ci", "two")]).write(toFile: path, atomically: true, encoding: .utf8)
        auth.reload()
        #expect(await auth.authenticate(authorization: Self.header("ci", "one")) == .rejected)
        #expect(await auth.authenticate(authorization: Self.header("ci", "two")) == .authenticated("ci"))
        // A broken file keeps the users in force.
        try "garbage\n".write(toFile: path, atomically: true, encoding: .utf8)
        auth.reload()
        #expect(await auth.authenticate(authorization: Self.header("ci", "two")) == .authenticated("ci"))
    }

    /// An unknown user costs a bcrypt check like a known one (no 1 ms answer that tells the
    /// two apart), against a dummy hash of the cost the file's entries use.
    @Test func unknownUsersAreCheckedLikeKnownOnes() async throws {
        let (auth, path) = try Self.authenticator([("bob", "right"), ("carol", "other")], cost: 6)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let dummy = auth.dummyHashForTests
        #expect(dummy.hasPrefix("$2b$06$"), "\(dummy)")
        let before = auth.verifications
        #expect(await auth.authenticate(authorization: Self.header("bob", "wrong"), client: "a") == .rejected)
        #expect(auth.verifications == before + 1)
        #expect(await auth.authenticate(authorization: Self.header("mallory", "wrong"), client: "a") == .rejected)
        #expect(auth.verifications == before + 2, "an unknown user was answered without a bcrypt check")
        #expect(await auth.authenticate(authorization: Self.header("bob", "right"), client: "a") == .authenticated("bob"))
        #expect(auth.verifications == before + 3)
        // Remembered: no further check.
        #expect(await auth.authenticate(authorization: Self.header("bob", "right"), client: "a") == .authenticated("bob"))
        #expect(auth.verifications == before + 3)
    }

    /// bcrypt reads at most 72 bytes of a C string: a NUL after the right password, or bytes
    /// past the 72nd, used to be ignored, so `right\0junk` was accepted.
    @Test func passwordsBcryptWouldTruncateAreRefused() async throws {
        let long = String(repeating: "p", count: 72)
        let (auth, path) = try Self.authenticator([("bob", "right"), ("dave", long)])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let before = auth.verifications
        #expect(await auth.authenticate(authorization: Self.header("bob", "right\u{0}junk"), client: "n") == .rejected)
        #expect(await auth.authenticate(authorization: Self.header("dave", long + "x"), client: "n") == .rejected)
        #expect(await auth.authenticate(authorization: Self.header("dave", long + "\u{0}"), client: "n") == .rejected)
        #expect(auth.verifications == before, "a password bcrypt would truncate was checked")
        #expect(await auth.authenticate(authorization: Self.header("dave", long), client: "n") == .authenticated("dave"))
        #expect(await auth.authenticate(authorization: Self.header("bob", "right"), client: "n") == .authenticated("bob"))
    }

    /// After `max_failures` wrong passwords an address is refused without a check until the
    /// window moves on; other addresses and remembered credentials are not affected.
    @Test func failuresAreLimitedPerAddress() async throws {
        let (auth, path) = try Self.authenticator([("bob", "right"), ("ci", "ok")], maxFailures: 3)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let start = ContinuousClock.now
        #expect(await auth.authenticate(authorization: Self.header("ci", "ok"), client: "10.0.0.1", now: start) == .authenticated("ci"))
        for second in 0..<3 {
            #expect(await auth.authenticate(authorization: Self.header("bob", "wrong"), client: "10.0.0.1", now: start + .seconds(second)) == .rejected)
        }
        let checks = auth.verifications
        let refused = await auth.authenticate(authorization: Self.header("bob", "right"), client: "10.0.0.1", now: start + .seconds(10))
        #expect(refused == .throttled(retryAfter: .seconds(50)))
        #expect(await auth.authenticate(authorization: Self.header("bob", "wrong"), client: "10.0.0.1", now: start + .seconds(10)) == .throttled(retryAfter: .seconds(50)))
        #expect(auth.verifications == checks, "a throttled attempt ran bcrypt")
        // Remembered credentials from the same address, and other addresses, pass.
        #expect(await auth.authenticate(authorization: Self.header("ci", "ok"), client: "10.0.0.1", now: start + .seconds(10)) == .authenticated("ci"))
        #expect(await auth.authenticate(authorization: Self.header("bob", "right"), client: "10.0.0.2", now: start + .seconds(10)) == .authenticated("bob"))
        // The first failure leaves the window after 60 s.
        #expect(await auth.authenticate(authorization: Self.header("bob", "right"), client: "10.0.0.1", now: start + .seconds(61)) == .authenticated("bob"))
    }

    /// More concurrent checks than the pool admits are refused at once (429), not queued.
    @Test func checksBeyondThePoolsCapacityAreRefusedAtOnce() async throws {
        let pool = BcryptPool(capacity: 2)
        let (auth, path) = try Self.authenticator([("bob", "right")], cost: 12, pool: pool)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let outcomes = await withTaskGroup(of: InboundAuthenticator.Outcome.self) { group in
            for n in 0..<12 {
                group.addTask { await auth.authenticate(authorization: Self.header("bob", "wrong\(n)"), client: "client-\(n)") }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.contains(.busy), "\(outcomes)")
        #expect(outcomes.allSatisfy { $0 == .busy || $0 == .rejected }, "\(outcomes)")
        #expect(outcomes.filter { $0 == .rejected }.count >= 2, "\(outcomes)")
        #expect(pool.verifications == outcomes.filter { $0 == .rejected }.count)
    }

    @Test(arguments: [
        ("ci:{SHA}abc", "only bcrypt"),
        ("ci:$apr1$abc$def", "only bcrypt"),
        ("no-colon-here", "expected user:bcrypt-hash"),
        (":$2y$05$abcdefghijklmnopqrstuuRdt9aGqXk0A5dXrUD0.jwZAw8ZmV1K.", "empty user name"),
        ("# only a comment\n", "has no users"),
    ])
    func refusesWhatIsNotBcrypt(_ text: String, _ message: String) {
        #expect(throws: InboundAuthenticator.LoadError.self) { try InboundAuthenticator.parse(text, path: "/f") }
        do {
            _ = try InboundAuthenticator.parse(text, path: "/f")
        } catch {
            #expect(error.description.contains(message), "\(error)")
            #expect(error.description.hasPrefix("auth.htpasswd"))
        }
    }
}
