import Foundation
import MirrorGateStorage
import MirrorGateUpstream
import NIOCore
import RegistryModel

/// Blobs (cached, in flight, or passed through) and pass-through listings.
extension PullService {
    // MARK: - Blobs

    /// The bytes of a blob of `name`: a cached file (when the repository is known to hold it,
    /// or an upstream confirms it with a free HEAD), or a fetch that clients follow as it
    /// lands. A HEAD of an uncached blob is answered by an upstream's HEAD; nothing is fetched.
    public func blob(registry: String, name: RepositoryName, digest: Digest, head: Bool = false) async throws(RegistryError) -> BlobSource {
        // Lease first, then look: an object being evicted cannot be leased and counts as absent.
        let lease = janitor?.lease(digest)
        if janitor == nil || lease != nil, let size = try? await blobs.size(of: digest) {
            if !(await links.isLinked(digest, registry: registry, repository: name.value)) {
                try await confirm(registry: registry, name: name, ask: .blob(digest, method: .HEAD, from: 0))
            }
            janitor?.recordAccess(digest)
            return .cached(CachedBlob(digest: digest, size: size, store: blobs, lease: lease))
        }
        if head {
            return try await remoteBlobHead(registry: registry, name: name, digest: digest)
        }
        if let janitor, !janitor.isWritable, !fetcher.isFetching(digest, registry: registry) {
            return .passThrough(try await passThroughBlob(registry: registry, name: name, digest: digest))
        }
        let flight = fetcher.blob(digest, registry: registry, repository: name)
        if flight.repository != name, !(await links.isLinked(digest, registry: registry, repository: name.value)) {
            // Joining another repository's fetch shares its bytes only once an upstream says
            // this repository holds them too.
            try await confirm(registry: registry, name: name, ask: .blob(digest, method: .HEAD, from: 0))
        }
        return .inFlight(flight.blob)
    }

    /// A HEAD of an uncached blob, answered by the first upstream in order that has it.
    private func remoteBlobHead(registry: String, name: RepositoryName, digest: Digest) async throws(RegistryError) -> BlobSource {
        if links.isAbsent(digest, registry: registry, repository: name.value) {
            throw RegistryError(.blobUnknown, "blob unknown to repository \(name): \(digest) (no upstream had it there moments ago)")
        }
        var walk = pool.walk(registry: registry, ask: .blob(digest, method: .HEAD, from: 0), repository: name)
        while let upstream = await walk.next() {
            guard let response = await walk.send(to: upstream) else { continue }
            guard response.status == 200 else {
                await walk.reject(response)
                continue
            }
            await response.discardBody()
            await links.link(digest, registry: registry, repository: name.value)
            return .remote(size: response.contentLength, source: upstream.name, skipped: walk.note)
        }
        let error = walk.clientError(notFound: RegistryError(.blobUnknown, "blob unknown to every upstream: \(digest)"))
        if error.status == 404 { links.rememberAbsent(digest, registry: registry, repository: name.value) }
        throw error
    }

    /// The first upstream in order that answers 200 for the blob, streamed without caching.
    public func passThroughBlob(registry: String, name: RepositoryName, digest: Digest) async throws(RegistryError) -> PassThroughBlob {
        var walk = pool.walk(registry: registry, ask: .blob(digest, method: .GET, from: 0), repository: name)
        while let upstream = await walk.next() {
            guard let response = await walk.send(to: upstream) else { continue }
            guard response.status == 200 else {
                await walk.reject(response)
                continue
            }
            if let size = response.contentLength, size > config.storage.maxBlobSize {
                await response.discardBody()
                walk.fail(upstream, .init(.tooLarge, "announced \(size) bytes, more than storage.max_blob_size (\(config.storage.maxBlobSize))"))
                continue
            }
            return PassThroughBlob(digest: digest, size: response.contentLength, response: response, maxSize: config.storage.maxBlobSize)
        }
        throw walk.clientError(notFound: RegistryError(.blobUnknown, "blob unknown to every upstream: \(digest)"))
    }

    // MARK: - Pass-through listings

    /// A listing passed through from upstream.
    public enum Listing: Sendable {
        /// `tags/list`
        case tags
        /// `referrers/<digest>`
        case referrers(Digest)

        var noun: String {
            switch self {
            case .tags: "tag list"
            case .referrers: "referrers index"
            }
        }
    }

    /// `GET /v2/<name>/tags/list` or `/referrers/<digest>` from the first upstream that has it.
    public func passThrough(registry: String, name: RepositoryName, listing: Listing, query: String?) async throws(RegistryError) -> PassThrough {
        let ask: UpstreamAsk = switch listing {
        case .tags: .tags(query: query)
        case .referrers(let digest): .referrers(digest, query: query)
        }
        var walk = pool.walk(registry: registry, ask: ask, repository: name)
        while let upstream = await walk.next() {
            guard let response = await walk.send(to: upstream) else { continue }
            guard response.status == 200 else {
                await walk.reject(response)
                continue
            }
            guard let body = await walk.collect(response, limit: Self.manifestLimit) else { continue }
            // What is passed through must be what the endpoint returns: a tag list, or an OCI
            // index of referrers, served with that type whatever the upstream labelled it.
            guard let contentType = Self.listingType(listing, body) else {
                walk.fail(upstream, .init(.badResponse, "answered with something that is not a \(listing.noun) (Content-Type \(Self.quoted(response.header("content-type"))))"))
                continue
            }
            return PassThrough(
                status: 200, contentType: contentType, body: body,
                nextQuery: response.header("link").flatMap(Self.nextLinkQuery), source: upstream.name,
                skipped: walk.note)
        }
        let notFound: RegistryError = switch listing {
        case .tags: RegistryError(.nameUnknown, "repository name not known to any upstream: \(name)")
        case .referrers:
            // Registries without the referrers API answer 404; so does the gateway, which is
            // what makes clients fall back to the sha256-<hex> tag schema.
            RegistryError(.unsupported, status: 404, "no upstream of this registry offers the referrers API for \(name); use the sha256-<hex> tag schema")
        }
        throw walk.clientError(notFound: notFound)
    }

    /// The content type of a valid listing body, nil when the body is not one.
    static func listingType(_ listing: Listing, _ body: ByteBuffer) -> String? {
        switch listing {
        case .tags:
            struct TagList: Decodable {
                var name: String
                var tags: [String]?
            }
            return (try? JSONDecoder().decode(TagList.self, from: Data(body.readableBytesView))) != nil ? "application/json" : nil
        case .referrers:
            guard let index = ManifestDocument.decode(body.readableBytesView), index.manifests != nil else { return nil }
            return MediaType.ociIndex
        }
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
