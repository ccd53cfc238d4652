import Foundation
import Logging
import NIOCore
import NIOPosix
import RegistryModel
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Blobs as files under `root/blobs/<algorithm>/<2 hex>/<hex>`, written through temporary
/// files in `root/tmp` that are fsynced and renamed into place.
///
/// All file system calls run on NIO's blocking-I/O thread pool, never on an event loop or the
/// cooperative pool.
public struct FileBlobStore: BlobStore {
    public let root: String
    let blobsDirectory: String
    let temporaryDirectory: String
    let threadPool: NIOThreadPool

    /// Opens (and creates) the store. Leftover temporary files from an earlier run are removed.
    public init(root: String, threadPool: NIOThreadPool = .singleton, logger: Logger) throws {
        let absolute = URL(fileURLWithPath: root).standardizedFileURL.path
        self.root = absolute
        self.blobsDirectory = absolute + "/blobs"
        self.temporaryDirectory = absolute + "/tmp"
        self.threadPool = threadPool
        let fm = FileManager.default
        for dir in [blobsDirectory, temporaryDirectory] {
            do {
                try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw StorageError.io(operation: "create directory", path: dir, errno: errno == 0 ? EACCES : errno)
            }
        }
        let leftovers = (try? fm.contentsOfDirectory(atPath: temporaryDirectory)) ?? []
        for name in leftovers {
            try? fm.removeItem(atPath: temporaryDirectory + "/" + name)
        }
        if !leftovers.isEmpty {
            logger.info("removed leftover temporary files", metadata: ["count": "\(leftovers.count)", "path": "\(temporaryDirectory)"])
        }
    }

    /// The file that holds `digest` (whether or not it exists).
    public func path(for digest: Digest) -> String {
        "\(blobsDirectory)/\(digest.algorithm.rawValue)/\(digest.hex.prefix(2))/\(digest.hex)"
    }

    public func locate(_ digest: Digest) async throws -> BlobLocation? {
        let path = path(for: digest)
        return try await threadPool.runIfActive {
            var st = stat()
            guard stat(path, &st) == 0 else {
                if errno == ENOENT { return nil }
                throw StorageError.io(operation: "stat", path: path, errno: errno)
            }
            return .file(path: path, size: UInt64(st.st_size))
        }
    }

    public func read(_ digest: Digest, limit: Int) async throws -> ByteBuffer? {
        let path = path(for: digest)
        return try await threadPool.runIfActive {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                if errno == ENOENT { return nil }
                throw StorageError.io(operation: "open", path: path, errno: errno)
            }
            defer { close(fd) }
            var buffer = ByteBufferAllocator().buffer(capacity: 16 * 1024)
            while buffer.readableBytes <= limit {
                let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 64 * 1024) { ptr in
                    Glibc.read(fd, ptr.baseAddress, ptr.count)
                }
                if n < 0 { throw StorageError.io(operation: "read", path: path, errno: errno) }
                if n == 0 { return buffer }
            }
            throw StorageError.io(operation: "read (larger than \(limit) bytes)", path: path, errno: EFBIG)
        }
    }

    public func makeIngest(for digest: Digest) async throws -> any BlobIngest {
        let temp = "\(temporaryDirectory)/\(digest.algorithm.rawValue)-\(digest.hex.prefix(16))-\(UUID().uuidString)"
        let fd = try await threadPool.runIfActive {
            let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw StorageError.io(operation: "create", path: temp, errno: errno) }
            return fd
        }
        return FileIngest(digest: digest, fd: fd, temporaryPath: temp, finalPath: path(for: digest), threadPool: threadPool)
    }

    /// Every blob file with its size (walks the shard directories; for reconciliation).
    public func allBlobs() async throws -> [Digest: UInt64] {
        let root = blobsDirectory
        return try await threadPool.runIfActive {
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

    /// Re-hashes a stored file with its digest's algorithm; `true` when it matches its name.
    public func verify(_ digest: Digest) async throws -> Bool {
        let path = path(for: digest)
        return try await threadPool.runIfActive {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw StorageError.io(operation: "open", path: path, errno: errno) }
            defer { close(fd) }
            var hasher = ContentHasher(digest.algorithm)
            var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20)
            while true {
                buffer.clear()
                let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { ptr in
                    Glibc.read(fd, ptr.baseAddress, ptr.count)
                }
                if n < 0 { throw StorageError.io(operation: "read", path: path, errno: errno) }
                if n == 0 { break }
                hasher.update(buffer)
            }
            return hasher.finalize() == digest
        }
    }

    public func availableSpace() async -> UInt64? {
        let path = temporaryDirectory
        return try? await threadPool.runIfActive {
            var vfs = statvfs()
            guard statvfs(path, &vfs) == 0 else { return nil }
            return UInt64(vfs.f_bavail) * UInt64(vfs.f_frsize)
        }
    }

    /// Whether a small file can be written and synced in the store (a probe for disk-full recovery).
    public func probeWritable() async -> Bool {
        let probe = temporaryDirectory + "/.write-probe"
        return (try? await threadPool.runIfActive {
            let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return false }
            defer { close(fd); unlink(probe) }
            let bytes = [UInt8](repeating: 0, count: 64 << 10)
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            return written == bytes.count && fsync(fd) == 0
        }) ?? false
    }

    public func remove(_ digest: Digest) async throws {
        let path = path(for: digest)
        try await threadPool.runIfActive {
            if unlink(path) != 0, errno != ENOENT {
                throw StorageError.io(operation: "unlink", path: path, errno: errno)
            }
        }
    }
}

/// A temporary file being filled for one digest.
///
/// The descriptor is written by one writer at a time (the fetch that created it awaits every
/// write before the next); `closed` makes commit and discard close it exactly once.
final class FileIngest: BlobIngest, LocalBlobIngest {
    let digest: Digest
    let fd: Int32
    private let closed = Mutex(false)
    let temporaryPath: String
    let finalPath: String
    let threadPool: NIOThreadPool

    init(digest: Digest, fd: Int32, temporaryPath: String, finalPath: String, threadPool: NIOThreadPool) {
        self.digest = digest
        self.fd = fd
        self.temporaryPath = temporaryPath
        self.finalPath = finalPath
        self.threadPool = threadPool
    }

    func write(_ buffer: ByteBuffer) async throws {
        let fd = fd
        let path = temporaryPath
        try await threadPool.runIfActive {
            try buffer.withUnsafeReadableBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw StorageError.io(operation: "write", path: path, errno: errno)
                    }
                    offset += n
                }
            }
        }
    }

    func commit(verifiedAs actual: Digest) async throws {
        guard actual == digest else {
            await discard()
            throw StorageError.digestMismatch(expected: digest, actual: actual)
        }
        guard takeDescriptor() else { throw StorageError.io(operation: "commit (already closed)", path: temporaryPath, errno: EBADF) }
        let fd = fd
        let temp = temporaryPath
        let final = finalPath
        try await threadPool.runIfActive {
            defer { close(fd) }
            guard fsync(fd) == 0 else {
                let code = errno
                unlink(temp)
                throw StorageError.io(operation: "fsync", path: temp, errno: code)
            }
            let dir = String(final[..<final.lastIndex(of: "/")!])
            if mkdir(dir, 0o755) != 0, errno != EEXIST {
                let code = errno
                // Parent of a shard directory may be missing too.
                if code == ENOENT {
                    _ = mkdir(String(dir[..<dir.lastIndex(of: "/")!]), 0o755)
                    if mkdir(dir, 0o755) != 0, errno != EEXIST {
                        unlink(temp)
                        throw StorageError.io(operation: "mkdir", path: dir, errno: errno)
                    }
                } else {
                    unlink(temp)
                    throw StorageError.io(operation: "mkdir", path: dir, errno: code)
                }
            }
            guard rename(temp, final) == 0 else {
                let code = errno
                unlink(temp)
                throw StorageError.io(operation: "rename", path: final, errno: code)
            }
            // Make the rename durable: fsync the directory that now holds the entry.
            let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 {
                fsync(dfd)
                close(dfd)
            }
        }
    }

    /// `true` for the one caller that may close the descriptor.
    private func takeDescriptor() -> Bool {
        closed.withLock { wasClosed in
            defer { wasClosed = true }
            return !wasClosed
        }
    }

    func discard() async {
        guard takeDescriptor() else { return }
        let fd = fd
        let temp = temporaryPath
        _ = try? await threadPool.runIfActive {
            close(fd)
            unlink(temp)
        }
    }
}
