import MirrorGateStorage
import NIOCore

/// `length` bytes of a spool from `offset`, read on demand: the body of the PUT, or of one
/// multipart part, that uploads a verified blob. It reads through the spool's own descriptor
/// (``Spool/read(at:count:)``), so the upload needs no path and never opens the file itself,
/// and holds one buffer at a time whatever the blob or part size.
struct SpoolBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    /// Bytes per read: the same order as the HTTP client's writes, and small enough for the
    /// CPU cache between the read and the socket.
    static let readSize = 256 << 10

    let spool: Spool
    let offset: UInt64
    let length: UInt64

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(spool: spool, position: offset, end: offset + length)
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        let spool: Spool
        var position: UInt64
        let end: UInt64

        /// A spool shorter than announced, or one that cannot be read, is a ``S3Error/Code/localFile``
        /// failure: the upload stops and the store keeps nothing.
        mutating func next() async throws -> ByteBuffer? {
            guard position < end else { return nil }
            let count = Int(Swift.min(UInt64(SpoolBody.readSize), end - position))
            let buffer: ByteBuffer
            do {
                buffer = try await spool.read(at: position, count: count)
            } catch {
                throw S3Error(.localFile, "read spool of \(spool.digest): \(error)")
            }
            guard buffer.readableBytes > 0 else {
                throw S3Error(.localFile, "the spool of \(spool.digest) ends at \(position) bytes, expected \(end)")
            }
            position += UInt64(buffer.readableBytes)
            return buffer
        }
    }
}
