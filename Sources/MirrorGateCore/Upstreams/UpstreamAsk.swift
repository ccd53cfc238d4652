import MirrorGateUpstream
import NIOHTTP1
import RegistryModel

/// What one upstream request asks for. Its cost (a spend or free), its metric kind and its
/// path follow from the case, never from a path string.
enum UpstreamAsk: Sendable, Equatable {
    /// A manifest by tag or digest. A GET is a pull on Docker Hub's count; a HEAD is free.
    case manifest(Reference, method: HTTPMethod)
    /// A blob, from byte `from` on (`Range: bytes=from-`); a HEAD only checks it exists.
    case blob(Digest, method: HTTPMethod, from: UInt64)
    /// `tags/list` with the client's query.
    case tags(query: String?)
    /// `referrers/<digest>` with the client's query.
    case referrers(Digest, query: String?)

    /// Whether an answer spends budget (Docker Hub counts manifest GETs, not HEADs or blobs).
    var spends: Bool {
        if case .manifest(_, .GET) = self { return true }
        return false
    }

    /// The object the ask is about, when it names one by digest (bad copies are remembered by it).
    var digest: Digest? {
        switch self {
        case .manifest(let reference, _): reference.digest
        case .blob(let digest, _, _): digest
        case .tags, .referrers: nil
        }
    }

    var isManifest: Bool {
        if case .manifest = self { return true }
        return false
    }

    var method: HTTPMethod {
        switch self {
        case .manifest(_, let method), .blob(_, let method, _): method
        case .tags, .referrers: .GET
        }
    }

    /// The metric label (`manifest`, `blob`, `tags`, `referrers`).
    var kind: String {
        switch self {
        case .manifest: "manifest"
        case .blob: "blob"
        case .tags: "tags"
        case .referrers: "referrers"
        }
    }

    /// The request for `upstream`, its prefix applied: the only place upstream paths are built.
    /// Manifest requests always carry the full `Accept` list (the digest of a tag depends on
    /// it, and distribution answers 404 for an OCI manifest the client did not accept).
    func request(on upstream: Upstream, repository: RepositoryName, headers extra: HTTPHeaders = [:]) -> UpstreamClient.Request {
        let remote = upstream.remoteName(repository.value)
        var headers = extra
        switch self {
        case .manifest(let reference, let method):
            headers.replaceOrAdd(name: "Accept", value: MediaType.upstreamManifestAccept)
            return .init(method: method, path: "\(remote)/manifests/\(reference)", headers: headers, repository: remote)
        case .blob(let digest, let method, let from):
            if from > 0 { headers.replaceOrAdd(name: "Range", value: "bytes=\(from)-") }
            return .init(method: method, path: "\(remote)/blobs/\(digest)", headers: headers, repository: remote)
        case .tags(let query):
            return .init(method: .GET, path: "\(remote)/tags/list", query: query, headers: headers, repository: remote)
        case .referrers(let digest, let query):
            return .init(method: .GET, path: "\(remote)/referrers/\(digest)", query: query, headers: headers, repository: remote)
        }
    }
}
