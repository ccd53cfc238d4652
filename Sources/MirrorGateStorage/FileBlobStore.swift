import Foundation
import Logging
import NIOCore
import NIOPosix
import RegistryModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Blobs as files under `root/blobs/<algorithm>/<2 hex>/<hex>`; spools in `root/tmp`, fsynced
/// and renamed into place on commit (same file system, so the rename is atomic). On a
/// ReadWriteMany volume several gateways share it safely: a blob file appears whole or not at
/// all, writing the same content twice is harmless, and each gateway spools in a directory of
/// its own (`root/tmp/replicas/<name>`).
///
/// All file system calls run on NIO's blocking-I/O thread pool, never on an event loop or the
/// cooperative pool.
public struct FileBlobStore: BlobStore {
    public let root: String
    let blobsDirectory: String
    let spools: SpoolDirectory
    let threadPool: NIOThreadPool

    /// Opens (and creates) the store. Leftover spools from an earlier run are removed.
    ///
    /// - Parameter spoolName: the spool directory's name under `root/tmp` when several
    ///   gateways share `root` (a ReadWriteMany volume): each cleans only its own at start, so a
    ///   replica that starts never deletes what another one is fetching. Nil: `root/tmp` itself,
    ///   one gateway.
    public init(root: String, spoolName: String? = nil, threadPool: NIOThreadPool = .singleton, logger: Logger) throws(StorageError) {
        let absolute = URL(fileURLWithPath: root).standardizedFileURL.path
        self.root = absolute
        self.blobsDirectory = absolute + "/blobs"
        self.threadPool = threadPool
        do {
            try FileManager.default.createDirectory(atPath: blobsDirectory, withIntermediateDirectories: true)
        } catch {
            throw StorageError.system("create the cache directories", errno: errno == 0 ? EACCES : errno, path: blobsDirectory)
        }
        // On the same file system as the blobs, so a commit is an atomic rename.
        if let spoolName {
            let path = absolute + "/tmp/replicas/" + spoolName
            self.spools = try SpoolDirectory(path: path, threadPool: threadPool, logger: logger)
            SpoolDirectory.removeAbandoned(besides: path, olderThan: 3600, logger: logger)
        } else {
            self.spools = try SpoolDirectory(path: absolute + "/tmp", threadPool: threadPool, logger: logger)
        }
    }

    /// The file that holds `digest` (whether or not it exists).
    func path(for digest: Digest) -> String {
        "\(blobsDirectory)/\(digest.algorithm.rawValue)/\(digest.hex.prefix(2))/\(digest.hex)"
    }

    /// Runs `body` on the thread pool; a pool that is shutting down is "unavailable".
    private func onPool<T: Sendable>(_ operation: String, _ body: @Sendable @escaping () throws -> T) async throws(StorageError) -> T {
        do {
            return try await threadPool.runIfActive { try body() }
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.unavailable, operation: operation, cause: "\(error)")
        }
    }

    public func size(of digest: Digest) async throws(StorageError) -> UInt64? {
        let path = path(for: digest)
        return try await onPool("stat blob") { () throws -> UInt64? in
            var st = stat()
            guard stat(path, &st) == 0 else {
                if errno == ENOENT { return nil }
                throw StorageError.system("stat blob", errno: errno)
            }
            return UInt64(st.st_size)
        }
    }

    public func reader(for digest: Digest, range: ClosedRange<UInt64>?) async throws(StorageError) -> (any BlobReader)? {
        let path = path(for: digest)
        let opened = try await onPool("open blob") { () throws -> (FileBlobReader.OpenFile, UInt64)? in
            let fd = Syscalls.open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                if errno == ENOENT { return nil }
                throw StorageError.system("open blob", errno: errno)
            }
            let file = FileBlobReader.OpenFile(descriptor: fd)
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw StorageError.system("stat blob", errno: errno) }
            Syscalls.adviseSequential(fd)
            return (file, UInt64(st.st_size))
        }
        guard let (file, size) = opened else { return nil }
        let selected = range ?? 0...(max(size, 1) - 1)
        guard size > 0, selected.upperBound < size else {
            if size == 0 { return EmptyBlobReader() }
            throw StorageError(.io, operation: "open blob", cause: "range \(selected) is outside the \(size)-byte file")
        }
        return FileBlobReader(file: file, range: selected, threadPool: threadPool)
    }

    public func redirect(for digest: Digest) async throws(StorageError) -> String? { nil }

    public func read(_ digest: Digest, limit: Int) async throws(StorageError) -> ByteBuffer? {
        let path = path(for: digest)
        return try await onPool("read blob") { () throws -> ByteBuffer? in
            let fd = Syscalls.open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                if errno == ENOENT { return nil }
                throw StorageError.system("open blob", errno: errno)
            }
            defer { close(fd) }
            var buffer = ByteBufferAllocator().buffer(capacity: 16 * 1024)
            while buffer.readableBytes <= limit {
                let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 64 * 1024) { ptr in
                    Syscalls.read(fd, ptr.baseAddress, ptr.count)
                }
                if n < 0 { throw StorageError.system("read blob", errno: errno) }
                if n == 0 { return buffer }
            }
            throw StorageError(.io, operation: "read blob", cause: "larger than \(limit) bytes")
        }
    }

    public func makeSpool(for digest: Digest) async throws(StorageError) -> Spool {
        try await spools.makeSpool(for: digest)
    }

    public func commit(_ spool: Spool, verifiedAs actual: Digest) async throws(StorageError) {
        guard actual == spool.digest else {
            await spool.discard()
            throw .digestMismatch(expected: spool.digest, actual: actual)
        }
        do {
            try await spool.finishWriting()
        } catch {
            await spool.discard()
            throw error
        }
        let temp = spool.path
        let final = path(for: spool.digest)
        try await onPool("commit blob") { () throws in
            let dir = String(final[..<final.lastIndex(of: "/")!])
            if mkdir(dir, 0o755) != 0, errno != EEXIST {
                let code = errno
                // The parent of a shard directory may be missing too.
                if code == ENOENT {
                    _ = mkdir(String(dir[..<dir.lastIndex(of: "/")!]), 0o755)
                    if mkdir(dir, 0o755) != 0, errno != EEXIST {
                        let code = errno
                        unlink(temp)
                        throw StorageError.system("create a shard directory", errno: code, path: dir)
                    }
                } else {
                    unlink(temp)
                    throw StorageError.system("create a shard directory", errno: code, path: dir)
                }
            }
            guard rename(temp, final) == 0 else {
                let code = errno
                unlink(temp)
                throw StorageError.system("rename a spool into the cache", errno: code, path: final)
            }
            // Make the rename durable: fsync the directory that now holds the entry.
            let dfd = Syscalls.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 {
                fsync(dfd)
                close(dfd)
            }
        }
    }

    public func allBlobs() async throws(StorageError) -> [Digest: UInt64] {
        let root = blobsDirectory
        return try await onPool("list blobs") { () throws in
            var out: [Digest: UInt64] = [:]
            let fm = FileManager.default
            for algorithm in Digest.Algorithm.allCases {
                let base = "\(root)/\(algorithm.rawValue)"
                for shard in (try? fm.contentsOfDirectory(atPath: base)) ?? [] {
                    for name in (try? fm.contentsOfDirectory(atPath: "\(base)/\(shard)")) ?? [] {
                        let path = "\(base)/\(shard)/\(name)"
                        guard let digest = try? Digest(parsing: "\(algorithm.rawValue):\(name)"), name.hasPrefix(shard) else {
                            // Not a blob name: nothing MirrorGate wrote; leave it to the operator.
                            continue
                        }
                        var st = stat()
                        if stat(path, &st) == 0 { out[digest] = UInt64(st.st_size) }
                    }
                }
            }
            return out
        }
    }

    public func verify(_ digest: Digest) async throws(StorageError) -> Bool {
        let path = path(for: digest)
        return try await onPool("verify blob") { () throws in
            let fd = Syscalls.open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw StorageError.system("open blob", errno: errno) }
            defer { close(fd) }
            var hasher = ContentHasher(digest.algorithm)
            var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20)
            while true {
                buffer.clear()
                let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { ptr in
                    Syscalls.read(fd, ptr.baseAddress, ptr.count)
                }
                if n < 0 { throw StorageError.system("read blob", errno: errno) }
                if n == 0 { break }
                hasher.update(buffer)
            }
            return hasher.finalize() == digest
        }
    }

    public func availableSpace() async -> UInt64? {
        await spools.availableSpace()
    }

    public func probeWritable() async -> Bool {
        await spools.probeWritable()
    }

    public func remove(_ digest: Digest) async throws(StorageError) {
        let path = path(for: digest)
        try await onPool("remove blob") { () throws in
            if unlink(path) != 0, errno != ENOENT {
                throw StorageError.system("remove blob", errno: errno)
            }
        }
    }
}

/// The reader of an empty blob.
struct EmptyBlobReader: BlobReader {
    var length: UInt64 { 0 }
    func stream(to sink: (ByteBuffer) async throws -> Void) async throws {}
}
