import Foundation
import Logging
import MirrorGateStorage
import NIOCore
import RegistryModel
import Testing

/// A fresh directory under the system temporary directory, removed by `cleanUp()`.
struct TemporaryDirectory {
    let path: String

    init(_ label: String) throws {
        path = NSTemporaryDirectory() + "mirrorgate-\(label)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func cleanUp() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

@Suite("FileBlobStore")
struct FileBlobStoreTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    static func bytes(_ count: Int) -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
    }

    static func digest(_ bytes: [UInt8], _ algorithm: Digest.Algorithm = .sha256) -> Digest {
        var hasher = ContentHasher(algorithm)
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// Every regular file below `directory`, relative to it.
    static func files(under directory: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
        var out: [String] = []
        while let next = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory + "/" + next, isDirectory: &isDirectory), !isDirectory.boolValue {
                out.append(next)
            }
        }
        return out.sorted()
    }

    static func write(_ ingest: any BlobIngest, _ content: [UInt8], chunk: Int = 7000) async throws {
        var offset = 0
        repeat {
            let n = min(chunk, content.count - offset)
            try await ingest.write(ByteBuffer(bytes: content[offset..<(offset + n)]))
            offset += n
        } while offset < content.count
    }

    @Test(arguments: [Digest.Algorithm.sha256, .sha512])
    func ingestCommitLocateRead(_ algorithm: Digest.Algorithm) async throws {
        let dir = try TemporaryDirectory("blobs")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let content = Self.bytes(100_000)
        let digest = Self.digest(content, algorithm)

        #expect(try await store.locate(digest) == nil)
        #expect(try await store.read(digest, limit: 1 << 20) == nil)

        let ingest = try await store.makeIngest(for: digest)
        #expect(ingest.digest == digest)
        try await Self.write(ingest, content)
        // Nothing is visible before commit.
        #expect(try await store.locate(digest) == nil)
        let local = try #require(ingest as? any LocalBlobIngest)
        #expect(local.temporaryPath.hasPrefix(store.root + "/tmp/"))
        #expect(FileManager.default.fileExists(atPath: local.temporaryPath))

        try await ingest.commit(verifiedAs: digest)

        let path = store.path(for: digest)
        #expect(path == "\(store.root)/blobs/\(algorithm.rawValue)/\(digest.hex.prefix(2))/\(digest.hex)")
        #expect(try await store.locate(digest) == .file(path: path, size: UInt64(content.count)))
        let read = try #require(try await store.read(digest, limit: content.count))
        #expect(Array(read.readableBytesView) == content)
        #expect(FileManager.default.contents(atPath: path) == Data(content))
        #expect(Self.files(under: store.root + "/tmp").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: local.temporaryPath))
    }

    @Test func emptyBlob() async throws {
        let dir = try TemporaryDirectory("empty")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let digest = Self.digest([])
        let ingest = try await store.makeIngest(for: digest)
        try await ingest.commit(verifiedAs: digest)
        #expect(try await store.locate(digest) == .file(path: store.path(for: digest), size: 0))
        let read = try #require(try await store.read(digest, limit: 0))
        #expect(read.readableBytes == 0)
    }

    @Test func commitWithWrongDigestThrowsAndLeavesNothing() async throws {
        let dir = try TemporaryDirectory("mismatch")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let expected = Self.bytes(5000)
        let digest = Self.digest(expected)
        let other = Self.bytes(5000)
        let actual = Self.digest(other)

        let ingest = try await store.makeIngest(for: digest)
        try await Self.write(ingest, other)
        let error = await #expect(throws: StorageError.self) { try await ingest.commit(verifiedAs: actual) }
        guard case .digestMismatch(let reportedExpected, let reportedActual)? = error else {
            Issue.record("expected digestMismatch, got \(String(describing: error))")
            return
        }
        #expect(reportedExpected == digest)
        #expect(reportedActual == actual)
        #expect(try await store.locate(digest) == nil)
        #expect(try await store.locate(actual) == nil)
        #expect(try await store.read(digest, limit: 1 << 20) == nil)
        #expect(Self.files(under: store.root + "/blobs").isEmpty)
        #expect(Self.files(under: store.root + "/tmp").isEmpty)
    }

    @Test func discardLeavesNothing() async throws {
        let dir = try TemporaryDirectory("discard")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let content = Self.bytes(3000)
        let digest = Self.digest(content)
        let ingest = try await store.makeIngest(for: digest)
        try await Self.write(ingest, content)
        #expect(Self.files(under: store.root + "/tmp").count == 1)
        await ingest.discard()
        #expect(try await store.locate(digest) == nil)
        #expect(Self.files(under: store.root + "/blobs").isEmpty)
        #expect(Self.files(under: store.root + "/tmp").isEmpty)
    }

    @Test func concurrentIngestsOfTheSameDigestUseDistinctFiles() async throws {
        let dir = try TemporaryDirectory("concurrent")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let content = Self.bytes(1000)
        let digest = Self.digest(content)
        let first = try #require(try await store.makeIngest(for: digest) as? any LocalBlobIngest)
        let second = try #require(try await store.makeIngest(for: digest) as? any LocalBlobIngest)
        #expect(first.temporaryPath != second.temporaryPath)
        try await Self.write(first, content)
        try await Self.write(second, content)
        try await first.commit(verifiedAs: digest)
        try await second.commit(verifiedAs: digest)
        let read = try #require(try await store.read(digest, limit: 1000))
        #expect(Array(read.readableBytesView) == content)
        #expect(Self.files(under: store.root + "/tmp").isEmpty)
    }

    @Test func leftoverTemporaryFilesAreRemovedOnOpen() async throws {
        let dir = try TemporaryDirectory("leftovers")
        defer { dir.cleanUp() }
        let first = try FileBlobStore(root: dir.path, logger: Self.logger)
        let content = Self.bytes(2000)
        let digest = Self.digest(content)

        // A committed blob survives; an abandoned ingest and a stray file do not.
        let kept = try await first.makeIngest(for: digest)
        try await Self.write(kept, content)
        try await kept.commit(verifiedAs: digest)
        let abandoned = try #require(try await first.makeIngest(for: Self.digest([1, 2, 3])) as? any LocalBlobIngest)
        try await abandoned.write(ByteBuffer(bytes: [1, 2]))
        try Data("junk".utf8).write(to: URL(fileURLWithPath: first.root + "/tmp/stray"))
        #expect(Self.files(under: first.root + "/tmp").count == 2)

        let second = try FileBlobStore(root: dir.path, logger: Self.logger)
        #expect(second.root == first.root)
        #expect(Self.files(under: second.root + "/tmp").isEmpty)
        #expect(try await second.locate(digest) == .file(path: second.path(for: digest), size: 2000))
        await abandoned.discard()
    }

    @Test func readBeyondLimitThrows() async throws {
        let dir = try TemporaryDirectory("limit")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let content = Self.bytes(1000)
        let digest = Self.digest(content)
        let ingest = try await store.makeIngest(for: digest)
        try await Self.write(ingest, content)
        try await ingest.commit(verifiedAs: digest)

        #expect(try await store.read(digest, limit: 1000)?.readableBytes == 1000)
        #expect(try await store.read(digest, limit: 5000)?.readableBytes == 1000)
        for limit in [999, 500, 0] {
            await #expect(throws: StorageError.self) { try await store.read(digest, limit: limit) }
        }
    }

    @Test func readBeyondLimitThrowsForLargeFiles() async throws {
        let dir = try TemporaryDirectory("limit-large")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let content = Self.bytes(300_000)
        let digest = Self.digest(content)
        let ingest = try await store.makeIngest(for: digest)
        try await Self.write(ingest, content, chunk: 65_536)
        try await ingest.commit(verifiedAs: digest)
        #expect(try await store.read(digest, limit: 300_000)?.readableBytes == 300_000)
        await #expect(throws: StorageError.self) { try await store.read(digest, limit: 299_999) }
        await #expect(throws: StorageError.self) { try await store.read(digest, limit: 100_000) }
    }

    @Test func removeDeletesAndIsIdempotent() async throws {
        let dir = try TemporaryDirectory("remove")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let content = Self.bytes(10)
        let digest = Self.digest(content)
        let ingest = try await store.makeIngest(for: digest)
        try await Self.write(ingest, content)
        try await ingest.commit(verifiedAs: digest)
        #expect(try await store.locate(digest) != nil)
        try await store.remove(digest)
        #expect(try await store.locate(digest) == nil)
        try await store.remove(digest)
    }

    @Test func rootIsStandardized() throws {
        let dir = try TemporaryDirectory("root")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path + "/./x/../store", logger: Self.logger)
        #expect(!store.root.contains("/./"))
        #expect(!store.root.contains("/../"))
        #expect(store.root.hasSuffix("/store"))
        #expect(FileManager.default.fileExists(atPath: store.root + "/blobs"))
        #expect(FileManager.default.fileExists(atPath: store.root + "/tmp"))
    }

    @Test func rootThatIsAFileThrows() throws {
        let dir = try TemporaryDirectory("root-file")
        defer { dir.cleanUp() }
        let file = dir.path + "/not-a-directory"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        #expect(throws: StorageError.self) { try FileBlobStore(root: file, logger: Self.logger) }
    }
}
