import Foundation
import MirrorGateStorage
import MirrorGateUpstream
import NIOCore
import RegistryModel

/// Tag resolution: a free HEAD to the resolving upstreams, a GET only for a digest not cached.
extension PullService {
    /// Asks the upstreams for a tag (HEAD), fetching the manifest if its digest is new.
    func resolveTag(registry: String, name: RepositoryName, tag: String, record: TagRecord?) async throws(RegistryError) -> Manifest {
        var walk = pool.walk(registry: registry, purpose: .resolveTag, ask: .manifest(.tag(tag), method: .HEAD), repository: name)
        var quotaError: RegistryError?
        upstreams: while let upstream = await walk.next() {
            guard let response = await walk.send(to: upstream) else { continue }
            guard response.status == 200 else {
                await walk.reject(response)
                continue
            }
            await response.discardBody()
            var resolved: Manifest
            if let header = response.header("docker-content-digest"), let digest = try? Digest(parsing: header) {
                do throws(RegistryError) {
                    // The HEAD is the upstream's word that this repository holds the digest.
                    resolved = try await manifestByDigest(registry: registry, name: name, digest: digest, confirmedBy: upstream.id)
                } catch {
                    walk.note(upstream, "manifest \(digest): \(error.message)", status: error.status)
                    if error.code == .tooManyRequests {
                        // Every upstream was already tried for this digest: no budget anywhere.
                        quotaError = error
                        break upstreams
                    }
                    continue
                }
            } else {
                // No digest in the HEAD answer: GET by tag and hash what arrives.
                do throws(RegistryError) {
                    resolved = try await fetchManifestByTag(registry: registry, name: name, tag: tag, upstream: upstream)
                } catch {
                    walk.note(upstream, error.message, status: error.status)
                    continue
                }
            }
            resolved.source = upstream.name
            resolved.skipped = [walk.note, resolved.skipped].compactMap { $0 }.joined(separator: "; ").nonEmpty
            await saveTag(TagRecord(
                registry: registry, repository: name.value, tag: tag, digest: resolved.digest,
                mediaType: resolved.mediaType, checkedAt: Date(), upstream: upstream.name))
            return resolved
        }
        let error = walk.clientError(notFound: RegistryError(.manifestUnknown, "manifest unknown: \(name):\(tag)"))
        if config.tags.serveStale, error.status != 404, let record, var cached = await cachedManifest(record.digest) {
            let age = Int(Date().timeIntervalSince(record.checkedAt))
            logger.warning("serving a stale tag: no upstream could confirm it", metadata: [
                "registry": "\(registry)", "repository": "\(name)", "tag": "\(tag)", "digest": "\(record.digest)",
                "age_seconds": "\(age)", "upstreams": "\(walk.attempts)",
            ])
            cached.staleWarning = "110 mirrorgate \"Response is Stale: no upstream could confirm this tag (checked \(age)s ago)\""
            cached.source = "cache (stale)"
            cached.skipped = walk.note
            return cached
        }
        throw quotaError ?? error
    }

    /// A GET by tag on the upstream that resolved it without a digest (it still spends, so it
    /// goes through the walk's gates like any other ask).
    private func fetchManifestByTag(registry: String, name: RepositoryName, tag: String, upstream: Upstream) async throws(RegistryError) -> Manifest {
        let unknown = RegistryError(.manifestUnknown, "manifest unknown: \(name):\(tag)")
        var walk = UpstreamWalk(pool: pool, candidates: [upstream], ask: .manifest(.tag(tag), method: .GET), repository: name)
        guard let admitted = await walk.next(), let response = await walk.send(to: admitted) else {
            throw walk.clientError(notFound: unknown)
        }
        guard response.status == 200 else {
            await response.discardBody()
            throw RegistryError(.manifestUnknown, status: 502, "manifest GET answered \(response.status)")
        }
        guard let bytes = await walk.collect(response, limit: Self.manifestLimit) else { throw walk.clientError(notFound: unknown) }
        let digest = ContentHasher.sha256(of: bytes)
        if let claimed = response.header("docker-content-digest"), claimed != digest.description {
            throw RegistryError(.manifestUnknown, status: 502, "Docker-Content-Digest \(claimed) does not match the content (\(digest))")
        }
        guard let mediaType = Self.servedType(response, bytes) else {
            throw RegistryError(.manifestUnknown, status: 502, "\(upstream.name) answered with something that is not a manifest this gateway serves (Content-Type \(Self.quoted(response.header("content-type"))))")
        }
        await store(manifest: bytes, digest: digest, mediaType: mediaType)
        await links.link(digest, registry: registry, repository: name.value)
        return Manifest(digest: digest, mediaType: mediaType, bytes: bytes, staleWarning: nil, source: upstream.name, fetched: true, spend: walk.spend)
    }
}
