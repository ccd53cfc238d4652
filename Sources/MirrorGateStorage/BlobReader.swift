import NIOCore
import NIOPosix
import Synchronization

/// A byte range of a stored blob, opened by its store, streamed to a consumer with
/// backpressure. The store owns the bytes: a caller gets a reader, never a path.
public protocol BlobReader: Sendable {
    /// Bytes the range holds.
    var length: UInt64 { get }
    /// Sends the range to `sink`, chunk by chunk; each call returns when the consumer has
    /// taken the chunk (an HTTP writer returns once its channel accepts more).
    func stream(to sink: (ByteBuffer) async throws -> Void) async throws
    /// The range as a region of an open local file, for a writer that can send it without
    /// copying it through user space (`sendfile`); nil when the bytes are not in a local file
    /// (an object store), and the caller streams them.
    var fileRegion: BlobFileRegion? { get }
}

extension BlobReader {
    public var fileRegion: BlobFileRegion? { nil }
}

/// A range of an open local file, as NIO sends it with `sendfile(2)`. The file stays open for as
/// long as this value (or the reader it came from) lives, so a blob evicted meanwhile is still
/// sent whole: unlinking a file does not take its bytes from an open descriptor.
public struct BlobFileRegion: Sendable {
    let file: FileBlobReader.OpenFile
    /// Where the range starts in the file.
    public let offset: UInt64
    /// Bytes the range holds.
    public let length: UInt64

    /// `length` bytes from `offset` within this range, as a NIO `FileRegion` on the open file.
    public func region(from start: UInt64, length: UInt64) -> FileRegion {
        precondition(start + length <= self.length, "a part outside the region")
        let begin = Int(offset + start)
        return FileRegion(fileHandle: file.handle, readerIndex: begin, endIndex: begin + Int(length))
    }
}

/// A range of a stored file, read with `pread` on NIO's blocking-I/O thread pool into a few
/// buffers that are reused once the consumer has let go of them, so the warm path allocates
/// nothing per chunk and the socket write copies from memory the CPU cache still holds.
///
/// Why not Hummingbird's `FileIO.loadFile`: it reads ahead into fresh buffers, up to 8 chunks
/// per response (swift-nio's `FileChunks` watermarks), so 64 clients of a large blob held
/// ~600 MiB, and the kernel copied every byte into memory no CPU cache held.
public struct FileBlobReader: BlobReader {
    /// Bytes read per `pread`: small enough to stay in the CPU cache between the read and the
    /// socket write, large enough that the thread-pool hop per chunk is noise.
    static let chunkLength = 256 << 10
    /// Most buffers one reader has in flight (1 MiB per client at most).
    static let poolLimit = 4
    /// How long a reader waits before looking again when all its buffers are with the consumer.
    static let drainWait = Duration.microseconds(250)

    let file: OpenFile
    let range: ClosedRange<UInt64>
    let threadPool: NIOThreadPool

    public var length: UInt64 { UInt64(range.count) }

    public var fileRegion: BlobFileRegion? { BlobFileRegion(file: file, offset: range.lowerBound, length: length) }

    public func stream(to sink: (ByteBuffer) async throws -> Void) async throws {
        let capacity = Int(min(UInt64(Self.chunkLength), UInt64(range.count)))
        var pool: [Chunk] = []
        var offset = range.lowerBound
        while offset <= range.upperBound {
            let length = Int(min(UInt64(Self.chunkLength), range.upperBound - offset + 1))
            let buffer = try await Self.freeBuffer(in: &pool, capacity: capacity)
            let chunk = try await threadPool.runIfActive { [file, offset] () throws in
                try buffer.fill(from: file, offset: offset, length: length)
            }
            try await sink(chunk)
            offset += UInt64(length)
        }
    }

    /// A buffer the consumer has let go of; a new one while the pool is small; else waits for
    /// one. Hummingbird's writer accepts writes until the event loop has caught up with them,
    /// so without this bound a response queued megabytes whenever the event loops were busy.
    private static func freeBuffer(in pool: inout [Chunk], capacity: Int) async throws -> Chunk {
        while true {
            if let free = pool.first(where: { $0.isFree }) { return free }
            if pool.count < poolLimit {
                let chunk = Chunk(capacity: capacity)
                pool.append(chunk)
                return chunk
            }
            try await Task.sleep(for: drainWait)
        }
    }

    /// An open file descriptor, closed when the last reader or region using it is gone. NIO
    /// sends a `FileRegion` through a `NIOFileHandle`, which owns the descriptor; `pread` uses
    /// the same descriptor (a reader either streams or is sent as a region, never both at once).
    public final class OpenFile: Sendable {
        let descriptor: Int32
        let handle: NIOFileHandle

        init(descriptor: Int32) {
            self.descriptor = descriptor
            self.handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor)
        }

        deinit { try? handle.close() }
    }

    /// One reusable buffer. `fill` returns a `ByteBuffer` that shares its storage, which the
    /// consumer holds until the bytes are on the socket; once it lets go, the storage is ours
    /// alone again (`isFree`) and the next `fill` reuses it. Refilling a buffer that is still
    /// held gets fresh storage instead (`clear()` is copy-on-write), so queued bytes are never
    /// overwritten. The mutex hands the buffer between the thread-pool thread that fills it
    /// and the task that writes it.
    final class Chunk: Sendable {
        private let buffer: Mutex<ByteBuffer>

        init(capacity: Int) {
            buffer = Mutex(ByteBufferAllocator().buffer(capacity: capacity))
        }

        /// Whether nothing but this chunk holds the storage (so a refill allocates nothing).
        var isFree: Bool {
            buffer.withLock { buffer in buffer.modifyIfUniquelyOwned { _ in true } ?? false }
        }

        func fill(from file: OpenFile, offset: UInt64, length: Int) throws(StorageError) -> ByteBuffer {
            try buffer.withLock { (buffer: inout ByteBuffer) throws(StorageError) -> ByteBuffer in
                buffer.clear(minimumCapacity: length)
                var done = 0
                while done < length {
                    var failure: Int32 = 0
                    let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length - done) { bytes in
                        let n = Syscalls.pread(file.descriptor, bytes.baseAddress, min(bytes.count, length - done), offset + UInt64(done))
                        if n < 0 { failure = errno }
                        return max(n, 0)
                    }
                    if read > 0 {
                        done += read
                    } else if failure == 0 {
                        throw StorageError(.io, operation: "read cached blob", cause: "the file is shorter than its size")
                    } else if failure != EINTR {
                        throw StorageError.system("read cached blob", errno: failure)
                    }
                }
                return buffer
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
