import Hummingbird
import NIOCore
import NIOPosix
import RegistryModel
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The body of a cached blob, or of a byte range of it: the file is read with `pread` on NIO's
/// blocking-I/O thread pool into a few buffers that are reused once the channel has written
/// them, so the warm path allocates nothing per chunk and the socket write copies from memory
/// the CPU cache still holds.
///
/// Why not Hummingbird's `FileIO.loadFile`: it reads ahead into fresh buffers, up to 8 chunks
/// per response (swift-nio's `FileChunks` watermarks), so 64 clients of a large blob held
/// ~600 MiB, and the kernel copied every byte into memory no CPU cache held. Why not sendfile:
/// Hummingbird 2's `ResponseBodyWriter` takes only `ByteBuffer`s (its HTTP/1 pipeline is typed
/// `HTTPPart<HTTPResponse, ByteBuffer>`), so a NIO `FileRegion` cannot be handed through. A
/// reused, cache-warm buffer is the cheapest copy left.
struct CachedBlobBody: Sendable {
    /// Bytes read per `pread`: small enough to stay in the CPU cache between the read and the
    /// socket write, large enough that the thread-pool hop per chunk is noise.
    static let chunkLength = 256 << 10
    /// Most buffers one response has in flight (1 MiB per client at most).
    static let poolLimit = 4
    /// How long a response waits before looking again when all its buffers are in the channel.
    static let drainWait = Duration.microseconds(250)

    private let file: File
    private let range: ClosedRange<UInt64>
    private let threadPool: NIOThreadPool

    /// Opens the file (on the thread pool); throws `BLOB_UNKNOWN` if it cannot be opened.
    static func open(path: String, range: ClosedRange<UInt64>, threadPool: NIOThreadPool = .singleton) async throws -> CachedBlobBody {
        let file = try await threadPool.runIfActive { () throws(RegistryError) in try File(path: path) }
        return CachedBlobBody(file: file, range: range, threadPool: threadPool)
    }

    /// Writes the range, then finishes the body.
    func write(to writer: inout any ResponseBodyWriter) async throws {
        let capacity = Int(min(UInt64(Self.chunkLength), UInt64(range.count)))
        var pool: [Chunk] = []
        var offset = range.lowerBound
        while offset <= range.upperBound {
            let length = Int(min(UInt64(Self.chunkLength), range.upperBound - offset + 1))
            let buffer = try await Self.freeBuffer(in: &pool, capacity: capacity)
            let chunk = try await threadPool.runIfActive { [file, offset] () throws(RegistryError) in
                try buffer.fill(from: file, offset: offset, length: length)
            }
            try await writer.write(chunk)
            offset += UInt64(length)
        }
        try await writer.finish(nil)
    }

    /// A buffer the channel has let go of; a new one while the pool is small; else waits for one.
    /// Hummingbird's writer accepts writes until the event loop has caught up with them, so
    /// without this bound a response queued megabytes whenever the event loops were busy.
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

    /// An open file descriptor, closed when the last body using it is gone.
    final class File: Sendable {
        let descriptor: Int32

        init(path: String) throws(RegistryError) {
            #if canImport(Glibc)
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            #else
            let fd = Darwin.open(path, O_RDONLY | O_CLOEXEC)
            #endif
            guard fd >= 0 else {
                throw RegistryError(.blobUnknown, status: 404, "cached blob file cannot be opened (errno \(errno))")
            }
            #if os(Linux)
            _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
            #endif
            descriptor = fd
        }

        deinit { close(descriptor) }
    }

    /// One reusable buffer. `fill` returns a `ByteBuffer` that shares its storage, which the
    /// channel holds until the bytes are on the socket; once it lets go, the storage is ours
    /// alone again (`isFree`) and the next `fill` reuses it. Refilling a buffer that is still
    /// held gets fresh storage instead (`clear()` is copy-on-write), so bytes queued in the
    /// channel are never overwritten. The mutex hands the buffer between the thread-pool thread
    /// that fills it and the task that writes it.
    final class Chunk: Sendable {
        private let buffer: Mutex<ByteBuffer>

        init(capacity: Int) {
            buffer = Mutex(ByteBufferAllocator().buffer(capacity: capacity))
        }

        /// Whether nothing but this chunk holds the storage (so a refill allocates nothing).
        var isFree: Bool {
            buffer.withLock { buffer in buffer.modifyIfUniquelyOwned { _ in true } ?? false }
        }

        func fill(from file: File, offset: UInt64, length: Int) throws(RegistryError) -> ByteBuffer {
            try buffer.withLock { (buffer: inout ByteBuffer) throws(RegistryError) -> ByteBuffer in
                buffer.clear(minimumCapacity: length)
                var done = 0
                while done < length {
                    var failure: Int32 = 0
                    let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length - done) { bytes in
                        let n = pread(file.descriptor, bytes.baseAddress, min(bytes.count, length - done), off_t(offset) + off_t(done))
                        if n < 0 { failure = errno }
                        return max(n, 0)
                    }
                    if read > 0 {
                        done += read
                    } else if failure == 0 {
                        throw RegistryError(.blobUnknown, status: 500, "cached blob file is shorter than its size")
                    } else if failure != EINTR {
                        throw RegistryError(.blobUnknown, status: 500, "reading a cached blob file failed (errno \(failure))")
                    }
                }
                return buffer
            }
        }
    }
}
