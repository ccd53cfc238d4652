import Foundation
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

/// A blob being fetched, in a temporary file on local disk: the fetch appends to it, every
/// client following the fetch reads it at its own pace, and ``BlobStore/commit(_:verifiedAs:)``
/// publishes it once the digest verifies (a rename on a file system store, an upload to an
/// object store). Like zot's `downloadDir`, the spool is always local, whatever the store.
///
/// The writer is the one fetch that created it (it awaits every write before the next); the
/// read descriptor is shared by every follower and closed when the last one lets go, so
/// followers keep reading the same bytes after the file is renamed or removed.
public final class Spool: Sendable {
    public let digest: Digest
    /// Where the bytes are; known only to the storage module.
    let path: String
    private let writeDescriptor: Int32
    private let readDescriptor: Int32
    private let writerClosed = Mutex(false)
    let threadPool: NIOThreadPool

    init(digest: Digest, path: String, threadPool: NIOThreadPool) throws(StorageError) {
        let w = Syscalls.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard w >= 0 else { throw StorageError.system("create spool", errno: errno, path: path) }
        let r = Syscalls.open(path, O_RDONLY | O_CLOEXEC)
        guard r >= 0 else {
            let code = errno
            close(w)
            unlink(path)
            throw StorageError.system("open spool", errno: code, path: path)
        }
        self.digest = digest
        self.path = path
        self.writeDescriptor = w
        self.readDescriptor = r
        self.threadPool = threadPool
    }

    deinit {
        if takeWriter() { close(writeDescriptor) }
        close(readDescriptor)
    }

    /// Appends bytes.
    public func write(_ buffer: ByteBuffer) async throws(StorageError) {
        let fd = writeDescriptor
        let spoolPath = path
        do {
            try await threadPool.runIfActive { () throws in
                try buffer.withUnsafeReadableBytes { bytes in
                    var offset = 0
                    while offset < bytes.count {
                        let n = Syscalls.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                        if n < 0 {
                            if errno == EINTR { continue }
                            throw StorageError.system("write spool", errno: errno, path: spoolPath)
                        }
                        offset += n
                    }
                }
            }
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.unavailable, operation: "write spool", cause: "\(error)")
        }
    }

    /// Up to `count` bytes at `offset` (fewer at the end of what was written).
    public func read(at offset: UInt64, count: Int) async throws(StorageError) -> ByteBuffer {
        let fd = readDescriptor
        let spoolPath = path
        do {
            return try await threadPool.runIfActive { () throws in
                var buffer = ByteBufferAllocator().buffer(capacity: count)
                var failure: Int32 = 0
                _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { pointer in
                    let n = Syscalls.pread(fd, pointer.baseAddress, count, offset)
                    if n < 0 { failure = errno }
                    return max(n, 0)
                }
                if failure != 0 { throw StorageError.system("read spool", errno: failure, path: spoolPath) }
                return buffer
            }
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.unavailable, operation: "read spool", cause: "\(error)")
        }
    }

    /// Closes the writer before a commit, first flushing the written bytes to stable storage
    /// unless `durably` is false: a file system store renames the spool into the cache and
    /// needs the bytes on disk; an object store uploads it and drops it, so the bucket holds
    /// the durable copy and an fsync would only write to disk what is about to be deleted.
    package func finishWriting(durably: Bool = true) async throws(StorageError) {
        guard takeWriter() else { return }
        let fd = writeDescriptor
        let spoolPath = path
        do {
            try await threadPool.runIfActive { () throws in
                defer { close(fd) }
                guard !durably || fsync(fd) == 0 else { throw StorageError.system("fsync spool", errno: errno, path: spoolPath) }
            }
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.unavailable, operation: "fsync spool", cause: "\(error)")
        }
    }

    /// Bytes written so far (the whole content once the fetch has finished writing).
    package func length() async throws(StorageError) -> UInt64 {
        let fd = readDescriptor
        let spoolPath = path
        do {
            return try await threadPool.runIfActive { () throws -> UInt64 in
                var st = stat()
                guard fstat(fd, &st) == 0 else { throw StorageError.system("stat spool", errno: errno, path: spoolPath) }
                return UInt64(st.st_size)
            }
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.unavailable, operation: "stat spool", cause: "\(error)")
        }
    }

    /// Drops the spool's file (followers holding it keep reading what they have).
    public func discard() async {
        let path = path
        if takeWriter() { close(writeDescriptor) }
        _ = try? await threadPool.runIfActive { unlink(path) }
    }

    /// `true` for the one caller that may close the write descriptor.
    private func takeWriter() -> Bool {
        writerClosed.withLock { closed in
            defer { closed = true }
            return !closed
        }
    }
}
