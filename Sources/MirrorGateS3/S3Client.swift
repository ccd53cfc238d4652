import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// A small client for one S3 bucket (AWS or any S3-compatible store): HEAD, GET with Range,
/// PUT, DELETE, ListObjectsV2, multipart uploads, ListMultipartUploads and presigned GET URLs,
/// signed with SigV4 (``SigV4Signer``) and sent through AsyncHTTPClient.
///
/// Hand-written because no available Swift library does this (Soto and the AWS SDK do not
/// resolve here). It covers what a content-addressed blob cache needs and nothing else: no
/// retries (errors say whether retrying makes sense, see ``S3Error/category``), no bucket
/// management, no versioning.
///
/// Keys are relative: every method prepends ``S3Configuration/prefix`` and listings strip it.
/// Bodies stream both ways with back-pressure, so memory stays flat whatever the object size.
/// The client owns its `HTTPClient`; call ``shutdown()`` when done.
public final class S3Client: Sendable {
    public let configuration: S3Configuration
    public let endpoint: S3Configuration.Endpoint
    let signer: SigV4Signer
    let http: HTTPClient
    let logger: Logger

    /// Validates `configuration` and creates the HTTP client.
    /// - Throws: ``S3Error/Code/invalidConfiguration`` naming the bad key.
    public init(configuration: S3Configuration, logger: Logger) throws(S3Error) {
        self.endpoint = try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        self.signer = SigV4Signer(
            accessKeyID: configuration.accessKeyID, secretAccessKey: configuration.secretAccessKey,
            region: configuration.region)
        var http = HTTPClient.Configuration()
        http.redirectConfiguration = .disallow
        http.timeout = .init(connect: Self.timeAmount(configuration.timeout))
        http.decompression = .disabled
        // A refused connection fails now rather than being retried until the request deadline,
        // so "store unreachable" is reported at once.
        http.connectionPool.retryConnectionEstablishment = false
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
    }

    public func shutdown() async throws {
        try await http.shutdown()
    }

    // MARK: - Objects

    /// Checks that the bucket exists and the credentials may list it (one ListObjectsV2 of at
    /// most one key under the prefix). Use it at start-up: a HEAD of a missing object and a HEAD
    /// in a missing bucket both answer a bare 404, so only this tells them apart.
    public func checkAccess() async throws(S3Error) {
        _ = try await list(prefix: "", maxKeys: 1)
    }

    /// The object's size and ETag, or `nil` when there is no such key.
    public func head(_ key: String) async throws(S3Error) -> S3ObjectInfo? {
        let operation = "HEAD \(key)"
        let response = try await send(.HEAD, key: key, operation: operation)
        switch response.status.code {
        case 200:
            await Self.drain(response)
            return try info(response.headers, status: 200, operation: operation)
        case 404:
            await Self.drain(response)
            return nil
        default:
            throw await failure(response, operation: operation)
        }
    }

    /// Starts reading an object (or a range of it); `nil` when there is no such key. The body
    /// streams as it is consumed (``S3ObjectBody``).
    public func get(_ key: String, range: S3ByteRange? = nil) async throws(S3Error) -> S3Object? {
        let operation = "GET \(key)" + (range.map { " \($0.headerValue)" } ?? "")
        var headers: [(name: String, value: String)] = []
        if let range {
            guard range.isValid else { throw S3Error(.invalidArgument, "\(operation): invalid range") }
            headers.append(("range", range.headerValue))
        }
        let response = try await send(.GET, key: key, headers: headers, operation: operation)
        switch response.status.code {
        case 200, 206:
            let partial = response.status.code == 206
            guard let length = response.headers.first(name: "content-length").flatMap({ Int64($0) }) else {
                throw S3Error(.invalidResponse, "\(operation): answer without Content-Length", status: Int(response.status.code))
            }
            var size = length
            var bytes: ClosedRange<Int64>? = length > 0 ? 0...(length - 1) : nil
            if partial {
                guard let header = response.headers.first(name: "content-range"), let parsed = Self.contentRange(header),
                    parsed.range.count == length
                else {
                    throw S3Error(.invalidResponse, "\(operation): 206 without a Content-Range matching its length", status: 206)
                }
                bytes = parsed.range
                size = parsed.total
            }
            let info = S3ObjectInfo(
                size: size, etag: response.headers.first(name: "etag").map(S3ObjectListing.unquote),
                contentType: response.headers.first(name: "content-type"))
            let body = S3ObjectBody(
                response: response.body, expectedLength: length, stallTimeout: configuration.timeout, operation: operation)
            return S3Object(info: info, range: bytes, contentLength: length, body: body)
        case 404:
            let error = await failure(response, operation: operation)
            if error.code == .notFound { return nil }
            throw error
        default:
            throw await failure(response, operation: operation)
        }
    }

    /// Stores an object with a single PUT, streaming `body` (exactly `length` bytes).
    ///
    /// With `sha256` (lower-case hex; for an OCI blob, its digest) the payload is signed with that
    /// hash and `x-amz-checksum-sha256` is sent, so the store rejects bytes that do not match.
    /// Without it the payload is `UNSIGNED-PAYLOAD` over https (TLS protects it) and aws-chunked
    /// with signed chunks over http. With `ifNoneMatch` the PUT only succeeds when the key is
    /// new, and ``S3PutOutcome/alreadyExists`` reports the 412 otherwise.
    public func put<Body: AsyncSequence & Sendable>(
        _ key: String, body: Body, length: Int64, sha256: String? = nil, ifNoneMatch: Bool = false,
        contentType: String? = nil
    ) async throws(S3Error) -> S3PutOutcome where Body.Element == ByteBuffer {
        let operation = "PUT \(key)"
        var headers: [(name: String, value: String)] = []
        if let contentType { headers.append(("content-type", contentType)) }
        if ifNoneMatch { headers.append(("if-none-match", "*")) }
        if let sha256 {
            headers.append(("x-amz-checksum-sha256", try Self.base64(hex: sha256, operation: operation)))
        }
        let response = try await upload(
            key: key, query: [], headers: headers, body: body, length: length, sha256: sha256, operation: operation)
        switch response.status.code {
        case 200:
            await Self.drain(response)
            return .stored(etag: response.headers.first(name: "etag").map(S3ObjectListing.unquote))
        case 412 where ifNoneMatch:
            await Self.drain(response)
            return .alreadyExists
        default:
            throw await failure(response, operation: operation)
        }
    }

    /// Stores a small object held in memory (a manifest, a marker), signed with its SHA-256.
    public func put(
        _ key: String, bytes: ByteBuffer, ifNoneMatch: Bool = false, contentType: String? = nil
    ) async throws(S3Error) -> S3PutOutcome {
        try await put(
            key, body: ByteBufferSequence(buffer: bytes), length: Int64(bytes.readableBytes),
            sha256: SigV4Signer.sha256Hex(bytes), ifNoneMatch: ifNoneMatch, contentType: contentType)
    }

    /// Deletes an object. Deleting a key that does not exist succeeds, as in S3.
    public func delete(_ key: String) async throws(S3Error) {
        let operation = "DELETE \(key)"
        let response = try await send(.DELETE, key: key, operation: operation)
        switch response.status.code {
        case 200, 204:
            await Self.drain(response)
        default:
            let error = await failure(response, operation: operation)
            if error.code == .notFound { return }
            throw error
        }
    }

    /// One page (at most `maxKeys`, up to 1,000) of the keys under `prefix` (relative to the
    /// configured prefix), in S3's order (UTF-8 binary). Pass the page's
    /// ``S3ObjectListing/nextContinuationToken`` to get the next one.
    public func list(prefix: String = "", continuationToken: String? = nil, maxKeys: Int = 1000) async throws(S3Error) -> S3ObjectListing {
        let operation = "LIST \(configuration.prefix)\(prefix)"
        guard (1...1000).contains(maxKeys) else { throw S3Error(.invalidArgument, "\(operation): maxKeys must be 1...1000") }
        var query: [(name: String, value: String)] = [
            ("list-type", "2"), ("prefix", configuration.prefix + prefix), ("max-keys", String(maxKeys)),
        ]
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        let root = try await xmlRequest(.GET, key: nil, query: query, expectedRoot: "ListBucketResult", operation: operation)
        return try S3ObjectListing(xml: root, keyPrefix: configuration.prefix)
    }

    /// A URL that GETs `key` without credentials until `expires` has passed (1 second to 7 days),
    /// for redirecting clients to the store. Only `host` is signed, so any HTTP client can use it.
    public func presignedGET(_ key: String, expires: Duration, at date: Date = Date()) throws(S3Error) -> String {
        let seconds = expires.components.seconds
        guard (1...604_800).contains(seconds) else {
            throw S3Error(.invalidArgument, "presign \(key): expiry must be 1 second to 7 days, not \(expires)")
        }
        let target = try target(key: key)
        let presigned = signer.presign(
            method: "GET", path: target.path, host: target.host, expires: Int(seconds), timestamp: SigV4Timestamp(date))
        return "\(endpoint.scheme)://\(target.host)\(target.path)?\(presigned.query)"
    }
}
