import Foundation

/// Blob redirects, played by `Fixtures/registry_front.py`, and a request log that says
/// whether each request carried credentials.
///
/// - ``redirectBlobs(to:)``: a blob GET or HEAD (`/v2/<name>/blobs/<digest>`) that the
///   backend would answer 2xx gets `307` with `Location: <origin><same path>`, as Docker
///   Hub sends blob downloads to its CDN. The front asks the backend first (a HEAD with the
///   request's headers), so a request without valid credentials still gets the backend's
///   401, and an unknown blob its 404.
/// - ``redirectManifests(to:)``: the same for manifest GETs and HEADs.
/// - ``redirectLoop(_:)``: every blob GET or HEAD gets `307` to the same URL on this front,
///   forever.
/// - ``stallRedirects(_:)``: those 307s announce a body and never send it.
/// - ``stallManifestBodies(_:)``: manifest GETs get a head and no body.
///
/// Both are independent of the other modes except that a forced status
/// (``fail(with:)``) is answered first.
extension RegistryFront {
    /// One request the front saw (`GET /_front/requests`).
    public struct LoggedRequest: Sendable, Equatable, Decodable, CustomStringConvertible {
        /// `GET`, `HEAD`, …
        public let method: String
        /// The request target, query included.
        public let path: String
        /// The status the front answered.
        public let status: Int
        /// The scheme of the request's `Authorization` header: `basic`, `bearer`, `none`
        /// (no header) or `other`.
        public let auth: String

        /// Whether this is a blob GET or HEAD by digest (not an upload).
        public var isBlob: Bool { path.contains("/blobs/sha256:") && (method == "GET" || method == "HEAD") }

        public var description: String { "\(method) \(path) \(status) auth=\(auth)" }
    }

    /// Sends blob requests the backend would serve to `origin` (`http://127.0.0.2:PORT`)
    /// with 307; `nil` stops it.
    public func redirectBlobs(to origin: String?) async throws {
        try await setMode(json: origin.map { "{\"redirect_blobs\": \"\($0)\"}" } ?? "{\"redirect_blobs\": null}")
    }

    /// Sends manifest GETs and HEADs the backend would serve to `origin` with 307, as
    /// ``redirectBlobs(to:)`` does for blobs (the spec lets a registry redirect any request);
    /// `nil` stops it.
    public func redirectManifests(to origin: String?) async throws {
        try await setMode(json: origin.map { "{\"redirect_manifests\": \"\($0)\"}" } ?? "{\"redirect_manifests\": null}")
    }

    /// Answers every blob request with a 307 to itself (`false` stops it).
    public func redirectLoop(_ on: Bool) async throws {
        try await setMode(json: "{\"redirect_loop\": \(on)}")
    }

    /// Makes those 307s announce a 64-byte body that never comes (the connection is held
    /// for 120 s); `false` sends empty bodies again.
    public func stallRedirects(_ on: Bool) async throws {
        try await setMode(json: "{\"stall_redirects\": \(on)}")
    }

    /// Makes manifest GETs get the backend's status and headers but never their body (the
    /// connection is held for 120 s); `false` forwards bodies again.
    public func stallManifestBodies(_ on: Bool) async throws {
        try await setMode(json: "{\"stall_manifest_bodies\": \(on)}")
    }

    /// Every request seen so far, oldest first, with the scheme of its `Authorization`.
    public func loggedRequests() async throws -> [LoggedRequest] {
        let response = try await control("/_front/requests")
        guard response.status == 200 else {
            throw ManagedProcess.Failure("front: GET /_front/requests answered \(response.status): \(response.text)")
        }
        return try JSONDecoder().decode([LoggedRequest].self, from: response.body)
    }
}
