import MirrorGateStorage
import RegistryModel

/// A blob the cache holds, as the HTTP front serves it: its size, a reader for a range, or a
/// URL to redirect the client to. The lease keeps it from eviction for as long as this value
/// (held by the response body) lives.
public struct CachedBlob: Sendable {
    public let digest: Digest
    public let size: UInt64
    let store: any BlobStore
    let lease: ReadLease?

    init(digest: Digest, size: UInt64, store: any BlobStore, lease: ReadLease?) {
        self.digest = digest
        self.size = size
        self.store = store
        self.lease = lease
    }

    /// Opens `range` of the blob.
    public func reader(range: ClosedRange<UInt64>) async throws(RegistryError) -> any BlobReader {
        let opened: (any BlobReader)?
        do {
            opened = try await store.reader(for: digest, range: range)
        } catch {
            throw RegistryError(.blobUnknown, status: 500, "the cached blob cannot be read (\(error.code))")
        }
        guard let opened else {
            throw RegistryError(.blobUnknown, status: 404, "blob unknown: \(digest) (evicted meanwhile)")
        }
        return opened
    }

    /// A URL the client may fetch the blob from itself, when the store offers one.
    public func redirectURL() async -> String? {
        try? await store.redirect(for: digest)
    }
}
