import MirrorGateStorage
import NIOCore

/// A range of a stored blob, streamed from the bucket as the consumer takes it: the GET's
/// body (``S3ObjectBody``) is back-pressured, so a response holds a few buffers however large
/// the blob and however slow the client.
struct S3BlobReader: BlobReader {
    let object: S3Object
    let operation: String

    var length: UInt64 { UInt64(object.contentLength) }

    /// Failures of the store become ``StorageError``s; the consumer's own errors (a client that
    /// went away) pass through as they are.
    func stream(to sink: (ByteBuffer) async throws -> Void) async throws {
        var iterator = object.body.makeAsyncIterator()
        while true {
            let chunk: ByteBuffer?
            do {
                chunk = try await iterator.next()
            } catch let error as S3Error {
                throw StorageError.s3(error, operation)
            }
            guard let chunk else { return }
            try await sink(chunk)
        }
    }
}
