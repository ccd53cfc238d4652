import Foundation
import MirrorGateStorage
import MirrorGateUpstream
import NIOCore
import RegistryModel

/// Blobs (cached, in flight, or passed through) and pass-through listings.
extension PullService {
    // MARK: - Blobs

    /// The bytes of a blob: a cached file, or a fetch that clients follow as it lands.
    public func blob(registry: String, name: RepositoryName, digest: Digest) async throws(RegistryError) -> BlobSource {
        // Lease first, then look: an object being evicted cannot be leased and counts as absent.
        let lease = janitor?.lease(digest)
        if janitor == nil || lease != nil, let location = try? await blobs.locate(digest), case .file(let path, let size) = location {
            janitor?.recordAccess(digest)
            return .cached(path: path, size: size, lease: lease)
        }
        if let janitor, !janitor.isWritable, !fetcher.isFetching(digest) {
            return .passThrough(try await passThroughBlob(registry: registry, name: name, digest: digest))
        }
        return .inFlight(fetcher.blob(digest, registry: registry, repository: name))
    }

    /// The first upstream in order that answers 200 for the blob, streamed without caching.
    public func passThroughBlob(registry: String, name: RepositoryName, digest: Digest) async throws(RegistryError) -> PassThroughBlob {
        var attempts = UpstreamAttempts()
        for upstream in pool.candidates(registry: registry, purpose: .content) {
            guard pool.admit(upstream) else {
                attempts.skipped(upstream, "circuit open")
                continue
            }
            let remote = upstream.remoteName(name.value)
            do {
                let response = try await pool.send(.init(method: .GET, path: "\(remote)/blobs/\(digest)", repository: remote), to: upstream)
                switch response.status {
                case 200:
                    return PassThroughBlob(digest: digest, size: response.contentLength, response: response)
                default:
                    await attempts.record(unwanted: response)
                }
            } catch {
                attempts.failed(upstream, error: error)
            }
        }
        throw attempts.clientError(notFound: RegistryError(.blobUnknown, "blob unknown to every upstream: \(digest)"))
    }

    // MARK: - Pass-through listings

    /// `GET /v2/<name>/tags/list` or `/referrers/<digest>` from the first upstream that has it.
    public func passThrough(registry: String, name: RepositoryName, endpoint: String, query: String?) async throws(RegistryError) -> PassThrough {
        var attempts = UpstreamAttempts()
        for upstream in pool.candidates(registry: registry, purpose: .content) {
            guard pool.admit(upstream) else {
                attempts.skipped(upstream, "circuit open")
                continue
            }
            let remote = upstream.remoteName(name.value)
            do {
                let response = try await pool.send(.init(method: .GET, path: "\(remote)/\(endpoint)", query: query, repository: remote), to: upstream)
                switch response.status {
                case 200:
                    let body = try await response.collect(limit: Self.manifestLimit)
                    return PassThrough(
                        status: 200, contentType: response.header("content-type"), body: body,
                        nextQuery: response.header("link").flatMap(Self.nextLinkQuery), source: upstream.name,
                        skipped: attempts.isEmpty ? nil : attempts.description)
                default:
                    await attempts.record(unwanted: response)
                }
            } catch {
                attempts.failed(upstream, anyError: error)
            }
        }
        throw attempts.clientError(notFound: RegistryError(.nameUnknown, "repository name not known to any upstream: \(name)"))
    }

    /// The query of a `Link: <url>; rel="next"` header.
    static func nextLinkQuery(_ header: String) -> String? {
        guard header.contains("rel=\"next\"") || header.contains("rel=next"),
              let open = header.firstIndex(of: "<"), let close = header.firstIndex(of: ">"), open < close
        else { return nil }
        let target = header[header.index(after: open)..<close]
        guard let q = target.firstIndex(of: "?") else { return nil }
        return String(target[target.index(after: q)...])
    }
}
