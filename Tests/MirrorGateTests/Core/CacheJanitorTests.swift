import Foundation
import Logging
@testable import MirrorGateStorage
import NIOCore
import RegistryModel
import Testing

@testable import MirrorGateCore

@Suite("CacheJanitor")
struct CacheJanitorTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// Stores `count` random objects of `size` bytes, with last-access times one second apart.
    static func fill(_ blobs: FileBlobStore, _ metadata: SQLiteMetadataStore, count: Int, size: Int) async throws -> [Digest] {
        var digests: [Digest] = []
        for index in 0..<count {
            let buffer = ByteBuffer(bytes: (0..<size).map { _ in UInt8.random(in: 0...255) })
            let digest = ContentHasher.sha256(of: buffer)
            try await blobs.store(buffer, as: digest, verifiedAs: digest)
            let at = Date(timeIntervalSince1970: 1_700_000_000 + Double(index))
            try await metadata.saveObject(ObjectRecord(digest: digest, size: UInt64(size), mediaType: nil, createdAt: at, lastAccess: at))
            digests.append(digest)
        }
        return digests
    }

    @Test func evictsLeastRecentlyUsedButNeverALeasedObject() async throws {
        let dir = try TemporaryDirectory("janitor")
        defer { dir.cleanUp() }
        let blobs = try FileBlobStore(root: dir.path, logger: Self.logger)
        let metadata = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        let digests = try await Self.fill(blobs, metadata, count: 10, size: 1000)
        let janitor = CacheJanitor(blobs: blobs, metadata: metadata, maxSize: 5000, logger: Self.logger)
        let lease = janitor.lease(digests[0])
        let pass = try await janitor.evict(downTo: 4500)
        #expect(pass.freedObjects == 6)
        #expect(pass.sizeAfter == 4000)
        // The oldest was leased and stays; the next five oldest went.
        #expect(try await blobs.size(of: digests[0]) != nil)
        for digest in digests[1...6] { #expect(try await blobs.size(of: digest) == nil) }
        for digest in digests[7...] { #expect(try await blobs.size(of: digest) != nil) }
        withExtendedLifetime(lease) {}
    }

    @Test func recentReadsProtectObjects() async throws {
        let dir = try TemporaryDirectory("janitor")
        defer { dir.cleanUp() }
        let blobs = try FileBlobStore(root: dir.path, logger: Self.logger)
        let metadata = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        let digests = try await Self.fill(blobs, metadata, count: 4, size: 1000)
        let janitor = CacheJanitor(blobs: blobs, metadata: metadata, maxSize: 3000, logger: Self.logger)
        janitor.recordAccess(digests[0])
        _ = try await janitor.evict(downTo: 3000)
        #expect(try await blobs.size(of: digests[0]) != nil)
        #expect(try await blobs.size(of: digests[1]) == nil)
    }

    @Test func reconcileMakesFilesAndRowsAgree() async throws {
        let dir = try TemporaryDirectory("janitor")
        defer { dir.cleanUp() }
        let blobs = try FileBlobStore(root: dir.path, logger: Self.logger)
        let metadata = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        let digests = try await Self.fill(blobs, metadata, count: 3, size: 500)
        // A row without its file.
        try FileManager.default.removeItem(atPath: blobs.path(for: digests[0]))
        // A file without a row whose content matches its name: adopted.
        try await metadata.removeObject(digests[1])
        // A file without a row whose content does not match its name: removed.
        let bogus = Digest(algorithm: .sha256, hex: String(repeating: "ab", count: 32))
        try FileManager.default.createDirectory(atPath: (blobs.path(for: bogus) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data("not the content".utf8).write(to: URL(fileURLWithPath: blobs.path(for: bogus)))

        try await CacheJanitor(blobs: blobs, metadata: metadata, maxSize: 1 << 30, logger: Self.logger).reconcile()
        #expect(try await metadata.object(digests[0]) == nil)
        #expect(try await metadata.object(digests[1])?.size == 500)
        #expect(!FileManager.default.fileExists(atPath: blobs.path(for: bogus)))
        #expect(try await metadata.object(digests[2]) != nil)
        #expect(try await metadata.allObjects().count == 2)
    }
}
