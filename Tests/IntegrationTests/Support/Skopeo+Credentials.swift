import Foundation

/// skopeo against registries that want credentials (``TokenAuthRegistry``,
/// ``HtpasswdRegistry``): the same isolated, plain-HTTP, digest-preserving copies as
/// ``Skopeo/push(_:to:repository:tag:)`` and ``Skopeo/pull(from:repository:reference:format:platform:into:)``,
/// with `--dest-creds` / `--src-creds USER:PASSWORD` (or `--*-no-creds` when `nil`).
///
/// With a Bearer challenge skopeo (containers/image) GETs the realm with the credentials
/// as HTTP Basic (never the OAuth2 POST, which it only uses with an identity token); with
/// a Basic challenge it sends them on every request.
extension Skopeo {
    /// A user name and password.
    public struct Credentials: Sendable, Hashable {
        /// The user name.
        public let user: String
        /// The password.
        public let password: String
        /// Creates credentials.
        public init(user: String, password: String) {
            self.user = user
            self.password = password
        }
        /// `user:password`, as skopeo's `--src-creds` / `--dest-creds` take it.
        public var argument: String { "\(user):\(password)" }
    }

    /// Pushes every manifest and blob of `fixture` to `hostPort/repository:tag` with `credentials`.
    public func push(
        _ fixture: ImageFixture,
        to hostPort: String,
        repository: String,
        tag: String? = nil,
        credentials: Credentials?
    ) async throws {
        try await run([
            "copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
        ] + (credentials.map { ["--dest-creds", $0.argument] } ?? ["--dest-no-creds"]) + [
            fixture.sourceReference,
            Self.dockerReference(hostPort: hostPort, repository: repository, reference: tag ?? fixture.tag),
        ])
    }

    /// Pulls every platform of `hostPort/repository` at `reference` into a new `dir:`
    /// layout with `credentials`, and verifies it.
    public func pull(
        from hostPort: String,
        repository: String,
        reference: String,
        credentials: Credentials?
    ) async throws -> VerifiedLayout {
        let temporary = try TemporaryDirectory(prefix: "mirrorgate-pull")
        let target = temporary.appending("layout", isDirectory: true)
        try await run([
            "copy", "--all", "--preserve-digests", "--src-tls-verify=false",
        ] + (credentials.map { ["--src-creds", $0.argument] } ?? ["--src-no-creds"]) + [
            Self.dockerReference(hostPort: hostPort, repository: repository, reference: reference),
            "dir:\(target.path)",
        ])
        return try VerifiedLayout(verifying: target, storage: temporary)
    }
}
