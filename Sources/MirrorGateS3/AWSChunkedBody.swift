import NIOCore

/// Re-frames a body as `aws-chunked` with chained chunk signatures
/// (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`): the way to sign a streamed upload over plain HTTP
/// without hashing it first.
///
/// The input is cut into chunks of exactly ``chunkSize`` bytes (the last may be shorter), so the
/// encoded length is known up front (``SigV4ChunkSigner/encodedLength(decodedLength:chunkSize:)``)
/// and one chunk is the most this holds in memory. The input must yield exactly `decodedLength`
/// bytes; anything else fails the upload.
struct AWSChunkedBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer

    /// AWS's example size; the minimum is 8 KiB except for the last chunk.
    static var defaultChunkSize: Int { 64 * 1024 }

    let base: Base
    let decodedLength: Int64
    let chunkSize: Int
    let signer: SigV4ChunkSigner

    var encodedLength: Int64 {
        SigV4ChunkSigner.encodedLength(decodedLength: decodedLength, chunkSize: chunkSize)
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), decodedLength: decodedLength, chunkSize: chunkSize, signer: signer)
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let decodedLength: Int64
        let chunkSize: Int
        var signer: SigV4ChunkSigner
        var pending = ByteBuffer()
        var consumed: Int64 = 0
        var finished = false

        init(base: Base.AsyncIterator, decodedLength: Int64, chunkSize: Int, signer: SigV4ChunkSigner) {
            self.base = base
            self.decodedLength = decodedLength
            self.chunkSize = chunkSize
            self.signer = signer
        }

        mutating func next() async throws -> ByteBuffer? {
            guard !finished else { return nil }
            while pending.readableBytes < chunkSize, consumed < decodedLength {
                guard var input = try await base.next() else {
                    throw S3Error(.invalidArgument, "upload body ended after \(consumed) of \(decodedLength) bytes")
                }
                consumed += Int64(input.readableBytes)
                guard consumed <= decodedLength else {
                    throw S3Error(.invalidArgument, "upload body is longer than its length of \(decodedLength) bytes")
                }
                // Keeps the buffer at about one chunk plus one input buffer, however the sizes align.
                if pending.readerIndex > 0 { pending.discardReadBytes() }
                pending.writeBuffer(&input)
            }
            let size = Swift.min(chunkSize, pending.readableBytes)
            let chunk = pending.readSlice(length: size)!
            if size == 0 { finished = true }
            let signature = signer.sign(chunk: chunk)
            let header = SigV4ChunkSigner.chunkHeader(size: size, signature: signature)
            var framed = ByteBufferAllocator().buffer(capacity: header.utf8.count + size + 2)
            framed.writeString(header)
            framed.writeImmutableBuffer(chunk)
            framed.writeStaticString("\r\n")
            return framed
        }
    }
}
