import Foundation
import Logging
@testable import MirrorGateStorage
import NIOCore
import RegistryModel
import Testing

/// A fresh directory under the system temporary directory, removed by `cleanUp()` or, at the
/// latest, when the last reference goes (a fixture that holds one needs no `defer`).
final class TemporaryDirectory: Sendable {
    let path: String

    init(_ label: String) throws {
        path = NSTemporaryDirectory() + "mirrorgate-\(label)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func cleanUp() {
        try? FileManager.default.removeItem(atPath: path)
    }

    deinit {
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

    static func write(_ spool: Spool, _ content: [UInt8], chunk: Int = 7000) async throws {
        var offset = 0
        repeat {
            let n = min(chunk, content.count - offset)
            try await spool.write(ByteBuffer(bytes: content[offset..<(offset + n)]))
            offset += n
        } while offset < content.count
    }

    /// Everything a reader streams.
    static func drain(_ reader: any BlobReader) async throws -> [UInt8] {
        var out: [UInt8] = []
        try await reader.stream { out += Array($0.readableBytesView) }
        return out
    }

    static func stored(_ store: FileBlobStore, _ content: [UInt8]) async throws -> Digest {
        let digest = Self.digest(content)
        let spool = try await store.makeSpool(for: digest)
        try await Self.write(spool, content)
        try await store.commit(spool, verifiedAs: digest)
        return digest
    }

    @Test(arguments: [Digest.Algorithm.sha256, .sha512])
    func spoolCommitSizeReadAndReaders(_ algorithm: Digest.Algorithm) async throws {
        let dir = try TemporaryDirectory("blobs")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let content = Self.bytes(600_000)
        let digest = Self.digest(content, algorithm)

        #expect(try await store.size(of: digest) == nil)
        #expect(try await store.read(digest, limit: 1 << 20) == nil)
        #expect(try await store.reader(for: digest, range: nil) == nil)

        let spool = try await store.makeSpool(for: digest)
        #expect(spool.digest == digest)
        try await Self.write(spool, content)
        // Nothing is visible before commit, but a follower reads the spool as it grows.
        #expect(try await store.size(of: digest) == nil)
        #expect(spool.path.hasPrefix(store.root + "/tmp/"))
        let early = try await spool.read(at: 1000, count: 500)
        #expect(Array(early.readableBytesView) == Array(content[1000..<1500]))

        try await store.commit(spool, verifiedAs: digest)
        // The follower keeps reading the same bytes after the rename.
        let late = try await spool.read(at: 599_900, count: 500)
        #expect(Array(late.readableBytesView) == Array(content[599_900...]))

        let path = store.path(for: digest)
        #expect(path == "\(store.root)/blobs/\(algorithm.rawValue)/\(digest.hex.prefix(2))/\(digest.hex)")
        #expect(try await store.size(of: digest) == UInt64(content.count))
        let read = try #require(try await store.read(digest, limit: content.count))
        #expect(Array(read.readableBytesView) == content)
        let whole = try #require(try await store.reader(for: digest, range: nil))
        #expect(whole.length == UInt64(content.count))
        #expect(try await Self.drain(whole) == content)
        let part = try #require(try await store.reader(for: digest, range: 300_000...599_999))
        #expect(try await Self.drain(part) == Array(content[300_000...]))
        #expect(Self.files(under: store.root + "/tmp").isEmpty)
    }

    /// A reader keeps its file open: it streams every byte even if the blob is evicted
    /// meanwhile (a response in progress is never cut by eviction).
    @Test func aReaderOutlivesRemoval() async throws {
        let dir = try TemporaryDirectory("reader-remove")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let content = Self.bytes(1_500_000)
        let digest = try await Self.stored(store, content)
        let reader = try #require(try await store.reader(for: digest, range: nil))
        try await store.remove(digest)
        #expect(try await store.size(of: digest) == nil)
        #expect(try await Self.drain(reader) == content)
    }

    /// The warm path reuses its few buffers: streaming a large blob to a consumer that lets
    /// each chunk go allocates at most `poolLimit` buffers.
    @Test func streamingReusesItsBuffers() async throws {
        let dir = try TemporaryDirectory("reuse")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let content = Self.bytes(4 << 20)
        let digest = try await Self.stored(store, content)
        let reader = try #require(try await store.reader(for: digest, range: nil))
        var storages = Set<UnsafeRawPointer>()
        var total = 0
        try await reader.stream { chunk in
            _ = chunk.withUnsafeReadableBytes { storages.insert(UnsafeRawPointer($0.baseAddress!)) }
            total += chunk.readableBytes
        }
        #expect(total == content.count)
        #expect(storages.count <= FileBlobReader.poolLimit, "\(storages.count) buffers for 16 chunks")
    }

    @Test func emptyBlob() async throws {
        let dir = try TemporaryDirectory("empty")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let digest = Self.digest([])
        let spool = try await store.makeSpool(for: digest)
        try await store.commit(spool, verifiedAs: digest)
        #expect(try await store.size(of: digest) == 0)
        let read = try #require(try await store.read(digest, limit: 0))
        #expect(read.readableBytes == 0)
        let reader = try #require(try await store.reader(for: digest, range: nil))
        #expect(reader.length == 0)
    }

    @Test func commitWithWrongDigestThrowsAndLeavesNothing() async throws {
        let dir = try TemporaryDirectory("mismatch")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let expected = Self.bytes(5000)
        let digest = Self.digest(expected)
        let other = Self.bytes(5000)
        let actual = Self.digest(other)

        let spool = try await store.makeSpool(for: digest)
        try await Self.write(spool, other)
        let error = await #expect(throws: StorageError.self) { try await store.commit(spool, verifiedAs: actual) }
        #expect(error?.code == .digestMismatch)
        #expect(error?.description.contains(actual.description) == true)
        #expect(try await store.size(of: digest) == nil)
        #expect(try await store.size(of: actual) == nil)
        #expect(Self.files(under: store.root + "/blobs").isEmpty)
        #expect(Self.files(under: store.root + "/tmp").isEmpty)
    }

    @Test func discardLeavesNothing() async throws {
        let dir = try TemporaryDirectory("discard")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let content = Self.bytes(3000)
        let digest = Self.digest(content)
        let spool = try await store.makeSpool(for: digest)
        try await Self.write(spool, content)
        #expect(Self.files(under: store.root + "/tmp").count == 1)
        await spool.discard()
        #expect(try await store.size(of: digest) == nil)
        #expect(Self.files(under: store.root + "/blobs").isEmpty)
        #expect(Self.files(under: store.root + "/tmp").isEmpty)
    }

    @Test func concurrentSpoolsOfTheSameDigestUseDistinctFiles() async throws {
        let dir = try TemporaryDirectory("concurrent")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let content = Self.bytes(1000)
        let digest = Self.digest(content)
        let first = try await store.makeSpool(for: digest)
        let second = try await store.makeSpool(for: digest)
        #expect(first.path != second.path)
        try await Self.write(first, content)
        try await Self.write(second, content)
        try await store.commit(first, verifiedAs: digest)
        try await store.commit(second, verifiedAs: digest)
        let read = try #require(try await store.read(digest, limit: 1000))
        #expect(Array(read.readableBytesView) == content)
        #expect(Self.files(under: store.root + "/tmp").isEmpty)
    }

    @Test func leftoverTemporaryFilesAreRemovedOnOpen() async throws {
        let dir = try TemporaryDirectory("leftovers")
        defer { dir.cleanUp() }
        let first = try FileBlobStore(root: dir.path, logger: Self.logger)
        let content = Self.bytes(2000)
        // A committed blob survives; an abandoned spool and a stray file do not.
        let digest = try await Self.stored(first, content)
        let abandoned = try await first.makeSpool(for: Self.digest([1, 2, 3]))
        try await abandoned.write(ByteBuffer(bytes: [1, 2]))
        try Data("junk".utf8).write(to: URL(fileURLWithPath: first.root + "/tmp/stray"))
        #expect(Self.files(under: first.root + "/tmp").count == 2)

        let second = try FileBlobStore(root: dir.path, logger: Self.logger)
        #expect(second.root == first.root)
        #expect(Self.files(under: second.root + "/tmp").isEmpty)
        #expect(try await second.size(of: digest) == 2000)
        await abandoned.discard()
    }

    @Test func readBeyondLimitThrows() async throws {
        let dir = try TemporaryDirectory("limit")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let digest = try await Self.stored(store, Self.bytes(1000))
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
        let digest = try await Self.stored(store, Self.bytes(300_000))
        #expect(try await store.read(digest, limit: 300_000)?.readableBytes == 300_000)
        await #expect(throws: StorageError.self) { try await store.read(digest, limit: 299_999) }
        await #expect(throws: StorageError.self) { try await store.read(digest, limit: 100_000) }
    }

    @Test func removeDeletesAndIsIdempotent() async throws {
        let dir = try TemporaryDirectory("remove")
        defer { dir.cleanUp() }
        let store = try FileBlobStore(root: dir.path, logger: Self.logger)
        let digest = try await Self.stored(store, Self.bytes(10))
        #expect(try await store.size(of: digest) != nil)
        try await store.remove(digest)
        #expect(try await store.size(of: digest) == nil)
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

    /// The store reports its own health: a full or read-only store is told apart from
    /// other failures by the error's code, never by the caller reading errno.
    @Test func errorCodesClassifyTheCause() {
        #expect(StorageError.system("write", errno: ENOSPC).code == .resourceExhausted)
        #expect(StorageError.system("write", errno: EROFS).code == .readOnly)
        #expect(StorageError.system("write", errno: EACCES).isOutOfSpaceOrReadOnly)
        #expect(!StorageError.system("read", errno: EIO).isOutOfSpaceOrReadOnly)
        #expect(StorageError.metadata("gone").code == .unavailable)
    }
}
