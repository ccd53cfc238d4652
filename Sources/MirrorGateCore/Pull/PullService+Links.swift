import Foundation
import MirrorGateUpstream
import RegistryModel

/// Content is stored once by digest but served only through a repository known to hold it.
extension PullService {
    /// Confirms with a free HEAD, on `registry`'s upstreams in order, that `name` holds the
    /// object of `ask`, and links it. Returns the walk's note.
    ///
    /// - Throws: 404 `MANIFEST_UNKNOWN` or `BLOB_UNKNOWN` when no upstream confirms it, also
    ///   when none can answer: cached content is never served across repositories.
    @discardableResult
    func confirm(registry: String, name: RepositoryName, ask: UpstreamAsk) async throws(RegistryError) -> String? {
        guard let digest = ask.digest else { preconditionFailure("only objects named by digest are confirmed") }
        let code: RegistryError.Code = ask.isManifest ? .manifestUnknown : .blobUnknown
        let what = ask.isManifest ? "manifest" : "blob"
        if links.isAbsent(digest, registry: registry, repository: name.value) {
            throw RegistryError(code, "\(what) unknown to repository \(name): \(digest) (no upstream had it there moments ago)")
        }
        var walk = pool.walk(registry: registry, ask: ask, repository: name)
        while let upstream = await walk.next() {
            guard let response = await walk.send(to: upstream) else { continue }
            await response.discardBody()
            if response.status == 200 {
                await links.link(digest, registry: registry, repository: name.value)
                return walk.note
            }
            if [404, 401, 403].contains(response.status) {
                walk.notFound(upstream, status: response.status)
            } else {
                walk.note(upstream, "answered \(response.status)", status: response.status)
            }
        }
        let allNotFound = walk.attempts.entries.allSatisfy { if case .notFound = $0.outcome { true } else { false } }
        if allNotFound, !walk.attempts.isEmpty { links.rememberAbsent(digest, registry: registry, repository: name.value) }
        throw RegistryError(
            code,
            allNotFound
                ? "\(what) unknown to repository \(name): \(digest)"
                : "\(what) \(digest) is not known to be in repository \(name), and no upstream could confirm it",
            detail: walk.note)
    }
}
