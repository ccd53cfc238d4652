#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// `length` bytes of a local file from `offset`, read on demand in small buffers: the body of a
/// PUT or of one multipart part, straight from the spool file, so an upload holds a few hundred
/// kilobytes whatever the object or part size.
///
/// Reads run on NIO's blocking-I/O thread pool, never on the cooperative pool. The file is opened
/// on the first read and closed at the end (or when the iterator is dropped). A file shorter than
/// `offset + length` fails with ``S3Error/Code/localFile``.
public struct S3FileRegion: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    public let path: String
    public let offset: Int64
    public let length: Int64
    let readSize: Int
    let threadPool: NIOThreadPool

    public init(path: String, offset: Int64 = 0, length: Int64, readSize: Int = 256 * 1024, threadPool: NIOThreadPool = .singleton) {
        precondition(offset >= 0 && length >= 0 && readSize > 0)
        self.path = path
        self.offset = offset
        self.length = length
        self.readSize = readSize
        self.threadPool = threadPool
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(region: self)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let region: S3FileRegion
        var position: Int64
        var file: OpenFile?

        init(region: S3FileRegion) {
            self.region = region
            self.position = region.offset
        }

        public mutating func next() async throws -> ByteBuffer? {
            let end = region.offset + region.length
            guard position < end else {
                file = nil
                return nil
            }
            let path = region.path
            if file == nil {
                let fd = try await region.threadPool.runIfActive { () throws -> Int32 in
                    let fd = open(path, O_RDONLY | O_CLOEXEC)
                    guard fd >= 0 else { throw S3FileRegion.failure("open", path) }
                    return fd
                }
                file = OpenFile(fd)
            }
            let fd = file!.fd
            let count = Int(Swift.min(Int64(region.readSize), end - position))
            let at = position
            let buffer = try await region.threadPool.runIfActive { () throws -> ByteBuffer in
                var buffer = ByteBufferAllocator().buffer(capacity: count)
                while buffer.readableBytes < count {
                    let want = count - buffer.readableBytes
                    let offset = at + Int64(buffer.readableBytes)
                    var n = 0
                    buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { pointer in
                        n = pread(fd, pointer.baseAddress, want, off_t(offset))
                        return Swift.max(n, 0)
                    }
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw S3FileRegion.failure("read", path)
                    }
                    if n == 0 {
                        throw S3Error(.localFile, "\(path): ends at \(offset) bytes, expected \(end)")
                    }
                }
                return buffer
            }
            position += Int64(buffer.readableBytes)
            if position >= end { file = nil }
            return buffer
        }
    }

    /// Closes its descriptor when the iterator lets go of it.
    final class OpenFile {
        let fd: Int32
        init(_ fd: Int32) { self.fd = fd }
        deinit { close(fd) }
    }

    fileprivate static func failure(_ call: String, _ path: String) -> S3Error {
        S3Error(.localFile, "\(call) \(path): \(String(cString: strerror(errno)))")
    }
}
