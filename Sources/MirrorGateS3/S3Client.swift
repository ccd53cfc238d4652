import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

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
            return try info(response.headers, status: 200, operation: operation)
        case 404:
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

    // MARK: - Requests

    /// Host and encoded path of an object (`key`) or of the bucket (`nil`).
    func target(key: String?) throws(S3Error) -> (host: String, path: String) {
        var encodedKey = ""
        if let key {
            guard !key.isEmpty else { throw S3Error(.invalidArgument, "empty object key") }
            let full = configuration.prefix + key
            guard full.utf8.count <= 1024 else {
                throw S3Error(.invalidArgument, "key \"\(full.prefix(60))...\" is longer than S3's 1,024 bytes")
            }
            encodedKey = S3URIEncoding.path(full)
        }
        switch configuration.addressing {
        case .pathStyle:
            return (endpoint.authority, "/" + configuration.bucket + (key == nil ? "" : "/" + encodedKey))
        case .virtualHost:
            return (configuration.bucket + "." + endpoint.authority, "/" + encodedKey)
        }
    }

    /// Builds and signs a request. `headers` are extra headers to sign (`range`, `if-none-match`, ...).
    func signedRequest(
        _ method: HTTPMethod, key: String?, query: [(name: String, value: String)], headers: [(name: String, value: String)],
        payloadHash: String
    ) throws(S3Error) -> (request: HTTPClientRequest, signature: SigV4Signer.Signature, timestamp: SigV4Timestamp) {
        let target = try target(key: key)
        let timestamp = SigV4Timestamp(Date())
        var signed = headers
        signed.append(("host", target.host))
        signed.append(("x-amz-date", timestamp.amzDate))
        signed.append(("x-amz-content-sha256", payloadHash))
        let signature = signer.sign(
            SigV4Signer.Request(method: method.rawValue, path: target.path, query: query, headers: signed),
            payloadHash: payloadHash, timestamp: timestamp)
        let canonicalQuery = S3URIEncoding.canonicalQuery(query)
        var request = HTTPClientRequest(
            url: "\(endpoint.scheme)://\(target.host)\(target.path)" + (canonicalQuery.isEmpty ? "" : "?" + canonicalQuery))
        request.method = method
        for (name, value) in signed { request.headers.add(name: name, value: value) }
        request.headers.add(name: "authorization", value: signature.authorization)
        return (request, signature, timestamp)
    }

    /// Sends a request without a body (or with a small one held in memory) and returns the
    /// response head; the deadline covers the whole wait for it.
    func send(
        _ method: HTTPMethod, key: String?, query: [(name: String, value: String)] = [],
        headers: [(name: String, value: String)] = [], body: ByteBuffer? = nil, operation: String
    ) async throws(S3Error) -> HTTPClientResponse {
        let hash = body.map(SigV4Signer.sha256Hex) ?? SigV4Signer.emptyPayloadHash
        var (request, _, _) = try signedRequest(method, key: key, query: query, headers: headers, payloadHash: hash)
        if let body { request.body = .bytes(body) }
        let started = ContinuousClock.now
        do {
            let response = try await http.execute(request, deadline: .now() + Self.timeAmount(configuration.timeout), logger: logger)
            log(operation, response.status.code, since: started)
            return response
        } catch {
            throw S3Error.transport(error, operation: operation)
        }
    }

    /// Sends a request whose body streams from `body`, signed as ``put(_:body:length:sha256:ifNoneMatch:contentType:)``
    /// describes. The request fails with ``S3Error/Code/timeout`` when, for the configured
    /// timeout, neither a body buffer is taken nor the response head arrives: a deadline for the
    /// whole request would cut off large uploads.
    func upload<Body: AsyncSequence & Sendable>(
        key: String, query: [(name: String, value: String)], headers: [(name: String, value: String)], body: Body,
        length: Int64, sha256: String?, operation: String
    ) async throws(S3Error) -> HTTPClientResponse where Body.Element == ByteBuffer {
        guard length >= 0 else { throw S3Error(.invalidArgument, "\(operation): negative length") }
        if let sha256 { _ = try Self.base64(hex: sha256, operation: operation) }
        let progress = UploadProgress()
        let watched = ProgressReportingSequence(base: body, progress: progress)
        var request: HTTPClientRequest
        if let sha256 {
            request = try signedRequest(.PUT, key: key, query: query, headers: headers, payloadHash: sha256).request
            request.body = .stream(watched, length: .known(length))
        } else if endpoint.isTLS {
            request = try signedRequest(.PUT, key: key, query: query, headers: headers, payloadHash: SigV4Signer.unsignedPayload).request
            request.body = .stream(watched, length: .known(length))
        } else {
            var chunkedHeaders = headers
            chunkedHeaders.append(("content-encoding", "aws-chunked"))
            chunkedHeaders.append(("x-amz-decoded-content-length", String(length)))
            let signed = try signedRequest(.PUT, key: key, query: query, headers: chunkedHeaders, payloadHash: SigV4Signer.streamingPayload)
            request = signed.request
            let chunked = AWSChunkedBody(
                base: watched, decodedLength: length, chunkSize: AWSChunkedBody<Body>.defaultChunkSize,
                signer: SigV4ChunkSigner(signer: signer, timestamp: signed.timestamp, seedSignature: signed.signature.signature))
            request.body = .stream(chunked, length: .known(chunked.encodedLength))
        }
        let timeout = configuration.timeout
        let started = ContinuousClock.now
        do {
            let response = try await withThrowingTaskGroup(of: HTTPClientResponse?.self) { group in
                group.addTask { [http, logger, request] in
                    try await http.execute(request, deadline: .distantFuture, logger: logger)
                }
                group.addTask {
                    let tick = min(timeout / 4, .seconds(1))
                    while true {
                        try await Task.sleep(for: tick)
                        if progress.idle > timeout {
                            throw S3Error(.timeout, "\(operation): no progress (upload or answer) for \(timeout)")
                        }
                    }
                }
                defer { group.cancelAll() }
                return try await group.next()!!
            }
            log(operation, response.status.code, since: started)
            return response
        } catch {
            throw S3Error.transport(error, operation: operation)
        }
    }

    /// Sends a request and parses its XML answer, whose root must be `expectedRoot`.
    func xmlRequest(
        _ method: HTTPMethod, key: String?, query: [(name: String, value: String)], headers: [(name: String, value: String)] = [],
        body: ByteBuffer? = nil, expectedRoot: String, operation: String
    ) async throws(S3Error) -> S3XMLElement {
        let response = try await send(method, key: key, query: query, headers: headers, body: body, operation: operation)
        guard response.status.code == 200 else { throw await failure(response, operation: operation) }
        let data = try await Self.collect(response, limit: 16 << 20, stallTimeout: configuration.timeout, operation: operation)
        return try S3XMLElement.parse(
            data, expectedRoot: expectedRoot, status: 200, requestID: response.headers.first(name: "x-amz-request-id"))
    }

    /// The error a non-success answer stands for, from its status and error document.
    func failure(_ response: HTTPClientResponse, operation: String) async -> S3Error {
        let requestID = response.headers.first(name: "x-amz-request-id")
        var code: String?
        var message: String?
        if let data = try? await Self.collect(response, limit: 1 << 20, stallTimeout: configuration.timeout, operation: operation),
            !data.isEmpty, let root = try? S3XMLElement.parse(data, what: operation), root.name == "Error"
        {
            code = root.value("Code")
            message = root.value("Message")
        }
        return S3Error.from(
            status: Int(response.status.code), s3Code: code, s3Message: message, requestID: requestID, operation: operation)
    }

    private func info(_ headers: HTTPHeaders, status: Int, operation: String) throws(S3Error) -> S3ObjectInfo {
        guard let size = headers.first(name: "content-length").flatMap({ Int64($0) }) else {
            throw S3Error(.invalidResponse, "\(operation): answer without Content-Length", status: status)
        }
        return S3ObjectInfo(
            size: size, etag: headers.first(name: "etag").map(S3ObjectListing.unquote),
            contentType: headers.first(name: "content-type"))
    }

    private func log(_ operation: String, _ status: UInt, since started: ContinuousClock.Instant) {
        logger.debug(
            "s3 request", metadata: ["op": "\(operation)", "status": "\(status)", "elapsed": "\(ContinuousClock.now - started)"])
    }

    // MARK: - Helpers

    static func collect(_ response: HTTPClientResponse, limit: Int, stallTimeout: Duration, operation: String) async throws(S3Error) -> Data {
        let length = response.headers.first(name: "content-length").flatMap { Int64($0) }
        let body = S3ObjectBody(response: response.body, expectedLength: length, stallTimeout: stallTimeout, operation: operation)
        let buffer = try await body.collect(upTo: limit)
        return Data(buffer.readableBytesView)
    }

    /// Reads and drops a (normally empty) body so the connection can be reused.
    static func drain(_ response: HTTPClientResponse) async {
        do {
            for try await _ in response.body {}
        } catch {}
    }

    /// `bytes 100-199/20971520` → (100...199, 20971520).
    static func contentRange(_ header: String) -> (range: ClosedRange<Int64>, total: Int64)? {
        guard header.hasPrefix("bytes ") else { return nil }
        let spec = header.dropFirst(6)
        guard let dash = spec.firstIndex(of: "-"), let slash = spec.firstIndex(of: "/"), dash < slash,
            let first = Int64(spec[..<dash]), let last = Int64(spec[spec.index(after: dash)..<slash]),
            let total = Int64(spec[spec.index(after: slash)...]), first <= last, last < total
        else { return nil }
        return (first...last, total)
    }

    /// Base64 of the 32 bytes a 64-digit lower-case hex SHA-256 stands for.
    static func base64(hex: String, operation: String) throws(S3Error) -> String {
        let digits = Array(hex.utf8)
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        guard digits.count == 64 else { throw S3Error(.invalidArgument, "\(operation): sha256 must be 64 lower-case hex digits") }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for i in stride(from: 0, to: 64, by: 2) {
            guard let high = value(digits[i]), let low = value(digits[i + 1]) else {
                throw S3Error(.invalidArgument, "\(operation): sha256 must be 64 lower-case hex digits")
            }
            bytes.append(high << 4 | low)
        }
        return Data(bytes).base64EncodedString()
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(Int64(duration.components.seconds) * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}

/// When an upload last moved: a body buffer taken by the HTTP client.
final class UploadProgress: Sendable {
    private let last = Mutex(ContinuousClock.now)
    func tick() { last.withLock { $0 = .now } }
    var idle: Duration { ContinuousClock.now - last.withLock { $0 } }
}

/// Passes a body through, noting each buffer the HTTP client takes.
struct ProgressReportingSequence<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let progress: UploadProgress

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), progress: progress)
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let progress: UploadProgress

        mutating func next() async throws -> ByteBuffer? {
            let next = try await base.next()
            progress.tick()
            return next
        }
    }
}

/// One buffer as a body sequence.
struct ByteBufferSequence: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let buffer: ByteBuffer

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: buffer) }

    struct AsyncIterator: AsyncIteratorProtocol {
        var buffer: ByteBuffer?
        mutating func next() async -> ByteBuffer? {
            defer { buffer = nil }
            return buffer
        }
    }
}
