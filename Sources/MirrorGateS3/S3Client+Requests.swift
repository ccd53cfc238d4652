import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Building, signing and sending requests, and reading their answers.
extension S3Client {
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

    func info(_ headers: HTTPHeaders, status: Int, operation: String) throws(S3Error) -> S3ObjectInfo {
        guard let size = headers.first(name: "content-length").flatMap({ Int64($0) }) else {
            throw S3Error(.invalidResponse, "\(operation): answer without Content-Length", status: status)
        }
        return S3ObjectInfo(
            size: size, etag: headers.first(name: "etag").map(S3ObjectListing.unquote),
            contentType: headers.first(name: "content-type"))
    }

    func log(_ operation: String, _ status: UInt, since started: ContinuousClock.Instant) {
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
