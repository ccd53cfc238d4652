import Crypto
import NIOCore

/// The chained chunk signatures of a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (aws-chunked) upload,
/// and the framing S3 expects around each chunk.
///
/// Each chunk is sent as `hex(size);chunk-signature=<sig>\r\n<bytes>\r\n`, and the body ends with
/// a zero-size chunk. A chunk's string to sign is
/// `AWS4-HMAC-SHA256-PAYLOAD \n <timestamp> \n <scope> \n <previous signature> \n hex(SHA-256("")) \n hex(SHA-256(chunk))`,
/// where the first "previous signature" is the seed: the signature of the request's headers.
/// So every chunk authenticates all bytes before it, and S3 can reject a tampered body while
/// it streams, without the client hashing the whole payload first.
public struct SigV4ChunkSigner: Sendable {
    private let signer: SigV4Signer
    private let timestamp: SigV4Timestamp
    /// The signature of the last chunk signed (the seed before the first).
    public private(set) var previousSignature: String

    public init(signer: SigV4Signer, timestamp: SigV4Timestamp, seedSignature: String) {
        self.signer = signer
        self.timestamp = timestamp
        self.previousSignature = seedSignature
    }

    /// The string to sign for a chunk whose SHA-256 is `chunkHash` (hex), chained to the previous one.
    public func stringToSign(chunkHash: String) -> String {
        [
            "AWS4-HMAC-SHA256-PAYLOAD", timestamp.amzDate, signer.scope(timestamp), previousSignature,
            SigV4Signer.emptyPayloadHash, chunkHash,
        ].joined(separator: "\n")
    }

    /// Signs the next chunk (the final one is empty) and returns its signature.
    public mutating func sign(chunk: ByteBuffer) -> String {
        let signature = signer.signature(
            of: stringToSign(chunkHash: SigV4Signer.sha256Hex(chunk)), day: String(timestamp.day))
        previousSignature = signature
        return signature
    }

    /// `hex(size);chunk-signature=<signature>\r\n`
    public static func chunkHeader(size: Int, signature: String) -> String {
        String(size, radix: 16) + ";chunk-signature=" + signature + "\r\n"
    }

    /// The encoded body length (`Content-Length`) of `decodedLength` payload bytes sent in chunks
    /// of `chunkSize` (the last data chunk may be shorter), including the final empty chunk.
    public static func encodedLength(decodedLength: Int64, chunkSize: Int) -> Int64 {
        precondition(chunkSize > 0)
        func framed(_ size: Int64) -> Int64 {
            // hex digits + ";chunk-signature=" (17) + 64 + CRLF, the bytes, CRLF
            Int64(String(size, radix: 16).utf8.count) + 17 + 64 + 2 + size + 2
        }
        let full = decodedLength / Int64(chunkSize)
        let rest = decodedLength % Int64(chunkSize)
        return full * framed(Int64(chunkSize)) + (rest > 0 ? framed(rest) : 0) + framed(0)
    }
}
