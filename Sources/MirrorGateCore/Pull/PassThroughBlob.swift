import MirrorGateStorage
import MirrorGateUpstream
import NIOCore
import RegistryModel

/// A blob streamed straight from an upstream to one client when the cache cannot be written
/// (disk full): still hashed as it streams, and the last chunk is held back until the digest
/// verifies, so the client never receives a complete wrong blob. Nothing is cached.
public struct PassThroughBlob: Sendable {
    public let digest: Digest
    /// The upstream's `Content-Length`, if it sent one.
    public let size: UInt64?
    let response: UpstreamResponse
    /// `storage.max_blob_size`: a longer body fails.
    let maxSize: UInt64

    /// Streams the body to `sink`; throws (and withholds the last chunk) on a mismatch.
    public func stream(_ sink: (ByteBuffer) async throws -> Void) async throws {
        var hasher = ContentHasher(digest.algorithm)
        var held: ByteBuffer?
        for try await chunk in response.body {
            guard hasher.count + UInt64(chunk.readableBytes) <= min(size ?? maxSize, maxSize) else {
                throw RegistryError(.blobUnknown, status: 502, "\(response.upstream.name) sent more than \(size.map { "its Content-Length (\($0))" } ?? "storage.max_blob_size (\(maxSize))")")
            }
            hasher.update(chunk)
            if let previous = held { try await sink(previous) }
            held = chunk
        }
        let actual = hasher.finalize()
        guard actual == digest, size.map({ $0 == hasher.count }) ?? true else {
            throw RegistryError(.blobUnknown, status: 502, "\(response.upstream.name) sent content that hashes to \(actual), not \(digest)")
        }
        if let held { try await sink(held) }
    }
}
