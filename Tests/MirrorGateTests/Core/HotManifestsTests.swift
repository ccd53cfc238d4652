import Foundation
import Logging
@testable import MirrorGateStorage
import NIOCore
import RegistryModel
import Testing

@testable import MirrorGateCore

/// The in-memory manifest index follows the cache: an object the janitor evicts is no longer
/// served from memory, one it could not evict (leased) still is.
@Suite("HotManifests")
struct HotManifestsTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    static let mediaType = "application/vnd.oci.image.manifest.v1+json"

    @Test func anEvictedManifestLeavesTheIndex() async throws {
        let dir = try TemporaryDirectory("hot-manifests")
        defer { dir.cleanUp() }
        let blobs = try FileBlobStore(root: dir.path, logger: Self.logger)
        let metadata = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        let janitor = CacheJanitor(blobs: blobs, metadata: metadata, maxSize: 1 << 20, logger: Self.logger)
        let hot = HotManifests()
        // As PullService wires it.
        janitor.onEviction { [hot] in hot.forgetBody($0) }

        var digests: [Digest] = []
        for index in 0..<3 {
            let bytes = ByteBuffer(string: #"{"schemaVersion":2,"mediaType":"\#(Self.mediaType)","n":\#(index)}"#)
            let digest = ContentHasher.sha256(of: bytes)
            try await blobs.store(bytes, as: digest, verifiedAs: digest)
            let at = Date(timeIntervalSince1970: 1_700_000_000 + Double(index))
            try await metadata.saveObject(ObjectRecord(digest: digest, size: UInt64(bytes.readableBytes), mediaType: Self.mediaType, createdAt: at, lastAccess: at))
            hot.remember(.init(mediaType: Self.mediaType, bytes: bytes), for: digest)
            digests.append(digest)
        }
        let before = hot.heldBytes
        let lease = janitor.lease(digests[0])
        let pass = try await janitor.evict(downTo: 0)
        #expect(pass.freedObjects == 2)
        #expect(hot.body(digests[0]) != nil, "the leased manifest was not evicted and stays")
        #expect(hot.body(digests[1]) == nil && hot.body(digests[2]) == nil, "an evicted manifest is still served from memory")
        #expect(hot.heldBytes < before && hot.heldBytes == hot.body(digests[0])!.bytes.readableBytes)
        withExtendedLifetime(lease) {}
    }
}
