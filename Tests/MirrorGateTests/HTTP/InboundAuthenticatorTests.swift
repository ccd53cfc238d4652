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

    /// The entries `htpasswd -B` writes are `$2y$`; they used to be refused (401 for the right
    /// password) because the bcrypt code only knows `$2a$`/`$2b$`.
    @Test func acceptsOnlyTheRightPassword() async throws {
        let text = try HtpasswdTool.file([("ci", "s3cret"), ("ops", "other")])
        #expect(text.contains("ci:$2y$05$"))
        let path = try Self.file(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let auth = try InboundAuthenticator(config: .init(htpasswdPath: path), logger: Logger(label: "test"))
        #expect(await auth.authenticate(authorization: Self.header("ci", "s3cret")) == "ci")
        // Remembered pairs are still checked against the password.
        #expect(await auth.authenticate(authorization: Self.header("ci", "s3cret")) == "ci")
        #expect(await auth.authenticate(authorization: Self.header("ci", "s3cre")) == nil)
        #expect(await auth.authenticate(authorization: Self.header("ops", "s3cret")) == nil)
        #expect(await auth.authenticate(authorization: Self.header("nobody", "s3cret")) == nil)
        #expect(await auth.authenticate(authorization: nil) == nil)
        #expect(await auth.authenticate(authorization: "Bearer abc") == nil)
        #expect(await auth.authenticate(authorization: "Basic !!!notbase64") == nil)
        #expect(await auth.authenticate(authorization: "Basic " + Data("nocolon".utf8).base64EncodedString()) == nil)
        #expect(auth.challenge == "Basic realm=\"MirrorGate\", charset=\"UTF-8\"")
    }

    @Test func reloadReplacesUsersAndForgetsRememberedPairs() async throws {
        let path = try Self.file(try HtpasswdTool.file([("ci", "one")]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let auth = try InboundAuthenticator(config: .init(htpasswdPath: path), logger: Logger(label: "test"))
        #expect(await auth.authenticate(authorization: Self.header("ci", "one")) == "ci")
        try HtpasswdTool.file([("ci", "two")]).write(toFile: path, atomically: true, encoding: .utf8)
        auth.reload()
        #expect(await auth.authenticate(authorization: Self.header("ci", "one")) == nil)
        #expect(await auth.authenticate(authorization: Self.header("ci", "two")) == "ci")
        // A broken file keeps the users in force.
        try "garbage\n".write(toFile: path, atomically: true, encoding: .utf8)
        auth.reload()
        #expect(await auth.authenticate(authorization: Self.header("ci", "two")) == "ci")
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
