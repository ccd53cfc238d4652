import Crypto
import Foundation
import NIOCore
import Synchronization

/// AWS Signature Version 4 for S3: canonical request, string to sign, header authorization,
/// presigned query URLs, and the seed of `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` uploads (whose
/// chunks ``SigV4ChunkSigner`` signs).
///
/// Written from the AWS documents ("Create a signed AWS API request", the S3 API Reference's
/// `sig-v4-header-based-auth`, `sigv4-query-string-auth` and `sigv4-streaming` pages) and checked
/// against their published examples. The signing key (four chained HMACs) depends only on the
/// secret, the day, the region and the service, so it is derived once per UTC day and cached.
public final class SigV4Signer: Sendable, CustomStringConvertible {
    /// The algorithm name in `Authorization` and `X-Amz-Algorithm`.
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// The payload hash of a request whose body is not signed.
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// The payload hash of an aws-chunked upload whose chunks are signed one by one.
    public static let streamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    /// The hex SHA-256 of no bytes.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// The access key id (public; it appears in every credential scope).
    public let accessKeyID: String
    /// The region of the credential scope, e.g. `us-east-1`.
    public let region: String
    /// The service of the credential scope: `s3` (or `iam`, `service` in the generic test suite).
    public let service: String
    private let secretAccessKey: String
    private let cachedKey = Mutex<(day: String, key: SymmetricKey)?>(nil)

    /// A request as SigV4 sees it.
    public struct Request: Sendable {
        /// `GET`, `PUT`, ...
        public var method: String
        /// The path exactly as sent: already URI-encoded (``S3URIEncoding/path(_:)``), `/` for the root.
        public var path: String
        /// Query parameters, not encoded (the signer encodes them).
        public var query: [(name: String, value: String)]
        /// Every header to sign, with the value sent. Names are matched case-insensitively.
        public var headers: [(name: String, value: String)]

        public init(method: String, path: String, query: [(name: String, value: String)] = [], headers: [(name: String, value: String)]) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
        }
    }

    /// Everything a signature was computed from, so tests can compare each step with the AWS
    /// examples and a 403 can be debugged.
    public struct Signature: Sendable {
        public let canonicalRequest: String
        public let stringToSign: String
        /// `host;range;x-amz-content-sha256;x-amz-date`
        public let signedHeaders: String
        /// 64 lower-case hex digits.
        public let signature: String
        /// `<access key>/<day>/<region>/<service>/aws4_request`
        public let credential: String

        /// The value of the `Authorization` header.
        public var authorization: String {
            "\(SigV4Signer.algorithm) Credential=\(credential), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        }
    }

    /// A presigned URL's query: the `X-Amz-*` parameters plus the caller's, in canonical order,
    /// with `X-Amz-Signature` last.
    public struct PresignedQuery: Sendable {
        public let canonicalRequest: String
        public let stringToSign: String
        public let signature: String
        /// Ready to append after `?`.
        public let query: String
    }

    public init(accessKeyID: String, secretAccessKey: String, region: String, service: String = "s3") {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.region = region
        self.service = service
    }

    public var description: String {
        "SigV4Signer(\(accessKeyID), \(region)/\(service), secret redacted)"
    }

    /// `<day>/<region>/<service>/aws4_request`
    public func scope(_ timestamp: SigV4Timestamp) -> String {
        "\(timestamp.day)/\(region)/\(service)/aws4_request"
    }

    /// Signs `request` for header authorization. The caller must already have put `host`,
    /// `x-amz-date` (= `timestamp`) and, for S3, `x-amz-content-sha256` (= `payloadHash`) in
    /// its headers: S3 rejects requests without the latter even when the signature matches.
    public func sign(_ request: Request, payloadHash: String, timestamp: SigV4Timestamp) -> Signature {
        let (canonicalHeaders, signedHeaders) = Self.canonicalHeaders(request.headers)
        let canonicalRequest = [
            request.method,
            request.path,
            S3URIEncoding.canonicalQuery(request.query),
            canonicalHeaders,
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")
        let stringToSign = stringToSign(canonicalRequest: canonicalRequest, timestamp: timestamp)
        return Signature(
            canonicalRequest: canonicalRequest,
            stringToSign: stringToSign,
            signedHeaders: signedHeaders,
            signature: signature(of: stringToSign, day: String(timestamp.day)),
            credential: "\(accessKeyID)/\(scope(timestamp))"
        )
    }

    /// Presigns a request (query-string authorization) valid for `expires` seconds
    /// (1 second to 7 days). Only `host` is signed and the payload is `UNSIGNED-PAYLOAD`, so the
    /// URL works from any HTTP client that sends no extra signed headers.
    public func presign(
        method: String, path: String, host: String, query: [(name: String, value: String)] = [],
        expires: Int, timestamp: SigV4Timestamp
    ) -> PresignedQuery {
        var items = query
        items.append(("X-Amz-Algorithm", Self.algorithm))
        items.append(("X-Amz-Credential", "\(accessKeyID)/\(scope(timestamp))"))
        items.append(("X-Amz-Date", timestamp.amzDate))
        items.append(("X-Amz-Expires", String(expires)))
        items.append(("X-Amz-SignedHeaders", "host"))
        let canonicalQuery = S3URIEncoding.canonicalQuery(items)
        let canonicalRequest = [method, path, canonicalQuery, "host:\(host)\n", "host", Self.unsignedPayload]
            .joined(separator: "\n")
        let stringToSign = stringToSign(canonicalRequest: canonicalRequest, timestamp: timestamp)
        let signature = signature(of: stringToSign, day: String(timestamp.day))
        return PresignedQuery(
            canonicalRequest: canonicalRequest,
            stringToSign: stringToSign,
            signature: signature,
            query: canonicalQuery + "&X-Amz-Signature=" + signature
        )
    }

    /// `AWS4-HMAC-SHA256 \n <timestamp> \n <scope> \n hex(SHA-256(canonical request))`
    public func stringToSign(canonicalRequest: String, timestamp: SigV4Timestamp) -> String {
        [Self.algorithm, timestamp.amzDate, scope(timestamp), Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8)))]
            .joined(separator: "\n")
    }

    /// hex(HMAC(signing key of `day`, `stringToSign`))
    func signature(of stringToSign: String, day: String) -> String {
        Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: signingKey(day: day)))
    }

    /// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request")`, cached for the day.
    func signingKey(day: String) -> SymmetricKey {
        if let cached = cachedKey.withLock({ $0 }), cached.day == day { return cached.key }
        var key = SymmetricKey(data: Data(("AWS4" + secretAccessKey).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        cachedKey.withLock { $0 = (day, key) }
        return key
    }

    /// Lower-cased names, values trimmed with inner runs of spaces folded to one, sorted by name;
    /// repeated headers joined with `,`. Returns the canonical block (with its trailing blank
    /// line's newline) and the `;`-joined names.
    static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> (String, String) {
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            merged[name.lowercased(), default: []].append(trimmed(value))
        }
        let names = merged.keys.sorted()
        let block = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        return (block, names.joined(separator: ";"))
    }

    private static func trimmed(_ value: String) -> String {
        var out = ""
        var pendingSpace = false
        for character in value {
            if character == " " || character == "\t" {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(" ") }
                pendingSpace = false
                out.append(character)
            }
        }
        return out
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lower-case hex of any byte sequence (digests, MACs).
    static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Lower-case hex of a message authentication code.
    static func hex(_ code: HashedAuthenticationCode<SHA256>) -> String {
        hex(Array(code))
    }

    /// Lower-case hex of a SHA-256 digest.
    static func hex(_ digest: SHA256.Digest) -> String {
        hex(Array(digest))
    }

    /// hex(SHA-256(bytes)) of a buffer's readable bytes.
    public static func sha256Hex(_ buffer: ByteBuffer) -> String {
        buffer.withUnsafeReadableBytes { hex(SHA256.hash(data: $0)) }
    }
}
