/// A request path under `/v2/`, split into the repository part and the endpoint.
///
/// The repository part is not yet a `RepositoryName`: it may still carry a registry host
/// (`/v2/ghcr.io/org/app/...`) that routing strips before validation.
public struct RegistryPath: Equatable, Sendable {
    public enum Endpoint: Equatable, Sendable {
        /// `GET /v2/`
        case base
        case manifest(String)
        case blob(String)
        case tagsList
        case referrers(String)
        /// `/blobs/uploads/…`: a push endpoint.
        case upload
        /// `/v2/_catalog`
        case catalog
    }

    /// The raw path components in front of the endpoint (empty for `.base` and `.catalog`).
    public let repository: [Substring]
    public let endpoint: Endpoint

    /// Parses the path of a request (without query). Returns `nil` for a path that is not a
    /// distribution API route.
    public init?(path: Substring) {
        guard path == "/v2" || path.hasPrefix("/v2/") else { return nil }
        var parts = path.dropFirst(3).split(separator: "/", omittingEmptySubsequences: false)
        if parts.first == "" { parts.removeFirst() }
        if parts.last == "" { parts.removeLast() }
        if parts.isEmpty {
            self.repository = []
            self.endpoint = .base
            return
        }
        if parts == ["_catalog"] {
            self.repository = []
            self.endpoint = .catalog
            return
        }
        let n = parts.count
        if n >= 3, parts[n - 2] == "tags", parts[n - 1] == "list" {
            self.repository = Array(parts[..<(n - 2)])
            self.endpoint = .tagsList
            return
        }
        if let uploads = parts.lastIndex(of: "uploads"), uploads >= 2, parts[uploads - 1] == "blobs",
           uploads >= n - 2
        {
            self.repository = Array(parts[..<(uploads - 1)])
            self.endpoint = .upload
            return
        }
        guard n >= 3 else { return nil }
        let reference = String(parts[n - 1])
        let repository = Array(parts[..<(n - 2)])
        switch parts[n - 2] {
        case "manifests": self.endpoint = .manifest(reference)
        case "blobs": self.endpoint = .blob(reference)
        case "referrers": self.endpoint = .referrers(reference)
        default: return nil
        }
        self.repository = repository
    }
}
