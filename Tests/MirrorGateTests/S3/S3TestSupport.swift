import Crypto
import Foundation
import MirrorGateS3
import NIOCore
import Testing

/// Helpers shared by the S3 client suites.
enum S3TestSupport {
    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            var word = generator.next()
            for _ in 0..<8 where i < count {
                bytes[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
        return bytes
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    static func md5Hex(_ bytes: [UInt8]) -> String {
        Insecure.MD5.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// The whole body of an object.
    static func read(_ object: S3Object) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in object.body { bytes += chunk.readableBytesView }
        return bytes
    }

    /// A body that yields `bytes` in buffers of `chunk` bytes.
    static func body(_ bytes: [UInt8], chunk: Int = 100_000) -> ChunkedBody {
        ChunkedBody(bytes: bytes, chunk: chunk)
    }

    struct ChunkedBody: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let bytes: [UInt8]
        let chunk: Int
        var onChunk: (@Sendable (Int) -> Void)?

        init(bytes: [UInt8], chunk: Int, onChunk: (@Sendable (Int) -> Void)? = nil) {
            self.bytes = bytes
            self.chunk = chunk
            self.onChunk = onChunk
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: self) }

        struct AsyncIterator: AsyncIteratorProtocol {
            let body: ChunkedBody
            var offset = 0
            var count = 0
            mutating func next() async -> ByteBuffer? {
                guard offset < body.bytes.count else { return nil }
                let end = Swift.min(offset + body.chunk, body.bytes.count)
                defer {
                    offset = end
                    count += 1
                }
                body.onChunk?(count)
                return ByteBuffer(bytes: body.bytes[offset..<end])
            }
        }
    }

    /// Runs `body` with `client` and shuts the client down afterwards, also on a thrown error.
    static func using<T>(_ client: S3Client, _ body: (S3Client) async throws -> T) async throws -> T {
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// The S3Error `body` throws (failing the test when it throws none or another error).
    static func s3Error(_ body: () async throws -> Void) async -> S3Error? {
        do {
            try await body()
            Issue.record("expected an S3Error, got success")
            return nil
        } catch let error as S3Error {
            return error
        } catch {
            Issue.record("expected an S3Error, got \(error)")
            return nil
        }
    }
}
