import AsyncHTTPClient
import NIOCore
import NIOPosix

extension S3Client {
    /// Starts a multipart upload of `key`.
    public func createMultipartUpload(_ key: String, contentType: String? = nil) async throws(S3Error) -> S3MultipartUpload {
        let operation = "CREATE UPLOAD \(key)"
        let headers: [(name: String, value: String)] = contentType.map { [("content-type", $0)] } ?? []
        let root = try await xmlRequest(
            .POST, key: key, query: [("uploads", "")], headers: headers, expectedRoot: "InitiateMultipartUploadResult",
            operation: operation)
        return try S3MultipartUpload(initiateResult: root, key: key)
    }

    /// Uploads part `number` (1...10,000) of `upload`, streaming `body` (exactly `length` bytes).
    /// Every part but the last must be at least 5 MiB; S3 enforces that at completion.
    /// `sha256` (hex) signs the payload when known; otherwise it is signed as in
    /// ``put(_:body:length:sha256:ifNoneMatch:contentType:)``.
    public func uploadPart<Body: AsyncSequence & Sendable>(
        _ upload: S3MultipartUpload, number: Int, body: Body, length: Int64, sha256: String? = nil
    ) async throws(S3Error) -> S3CompletedPart where Body.Element == ByteBuffer {
        let operation = "UPLOAD PART \(number) \(upload.key)"
        guard (1...S3MultipartUpload.maximumPartCount).contains(number) else {
            throw S3Error(.invalidArgument, "\(operation): part numbers are 1...\(S3MultipartUpload.maximumPartCount)")
        }
        guard length <= S3MultipartUpload.maximumPartSize else {
            throw S3Error(.invalidArgument, "\(operation): a part holds at most 5 GiB")
        }
        let response = try await self.upload(
            key: upload.key, query: [("partNumber", String(number)), ("uploadId", upload.uploadID)], headers: [],
            body: body, length: length, sha256: sha256, operation: operation)
        guard response.status.code == 200 else { throw await failure(response, operation: operation) }
        await Self.drain(response)
        guard let etag = response.headers.first(name: "etag").map(S3ObjectListing.unquote), !etag.isEmpty else {
            throw S3Error(.invalidResponse, "\(operation): answer without ETag", status: 200)
        }
        return S3CompletedPart(number: number, etag: etag)
    }

    /// Completes `upload` from its parts. With `ifNoneMatch`, a key that was written meanwhile
    /// gives ``S3PutOutcome/alreadyExists`` (412) and the upload stays open: abort it.
    public func completeMultipartUpload(
        _ upload: S3MultipartUpload, parts: [S3CompletedPart], ifNoneMatch: Bool = false
    ) async throws(S3Error) -> S3PutOutcome {
        let operation = "COMPLETE UPLOAD \(upload.key)"
        guard !parts.isEmpty else { throw S3Error(.invalidArgument, "\(operation): no parts") }
        let document = ByteBuffer(string: S3CompletedPart.completionDocument(parts))
        var headers: [(name: String, value: String)] = [("content-type", "application/xml")]
        if ifNoneMatch { headers.append(("if-none-match", "*")) }
        let response = try await send(
            .POST, key: upload.key, query: [("uploadId", upload.uploadID)], headers: headers, body: document, operation: operation)
        switch response.status.code {
        case 200:
            // S3 answers 200 at once and sends the result (possibly an <Error>) when it is done.
            let data = try await Self.collect(response, limit: 1 << 20, stallTimeout: configuration.timeout, operation: operation)
            // moto 5.2.1 names the root CompleteMultipartUploadResponse.
            let root = try S3XMLElement.parse(
                data, expectedRoot: "CompleteMultipartUploadResult", alternativeRoots: ["CompleteMultipartUploadResponse"], status: 200,
                requestID: response.headers.first(name: "x-amz-request-id"))
            return .stored(etag: root.value("ETag").map(S3ObjectListing.unquote))
        case 412 where ifNoneMatch:
            await Self.drain(response)
            return .alreadyExists
        default:
            throw await failure(response, operation: operation)
        }
    }

    /// Abandons `upload` and frees its parts. An upload that is already gone is not an error.
    public func abortMultipartUpload(_ upload: S3MultipartUpload) async throws(S3Error) {
        let operation = "ABORT UPLOAD \(upload.key)"
        let response = try await send(.DELETE, key: upload.key, query: [("uploadId", upload.uploadID)], operation: operation)
        switch response.status.code {
        case 200, 204:
            await Self.drain(response)
        default:
            let error = await failure(response, operation: operation)
            if error.code == .notFound { return }
            throw error
        }
    }

    /// One page (up to 1,000) of the multipart uploads in progress under `prefix` (relative to the
    /// configured prefix), for a janitor that aborts orphans. Pass the page's next markers to get
    /// the next one.
    public func listMultipartUploads(
        prefix: String = "", keyMarker: String? = nil, uploadIDMarker: String? = nil
    ) async throws(S3Error) -> S3MultipartUploadListing {
        let operation = "LIST UPLOADS \(configuration.prefix)\(prefix)"
        var query: [(name: String, value: String)] = [("uploads", ""), ("prefix", configuration.prefix + prefix)]
        if let keyMarker {
            query.append(("key-marker", configuration.prefix + keyMarker))
            if let uploadIDMarker { query.append(("upload-id-marker", uploadIDMarker)) }
        }
        let root = try await xmlRequest(.GET, key: nil, query: query, expectedRoot: "ListMultipartUploadsResult", operation: operation)
        return try S3MultipartUploadListing(xml: root, keyPrefix: configuration.prefix)
    }

    /// Stores `size` bytes that `reading(offset, length)` streams on demand (the spool file of a
    /// verified blob): one PUT up to `partSize`, otherwise a multipart upload in parts of
    /// `partSize` (raised if needed to stay within 10,000 parts), each part's body asked for
    /// when it is sent, so memory stays a few buffers whatever the size. Parts go one after
    /// another.
    ///
    /// `sha256` (hex of the whole content) signs and checksums the single PUT; multipart parts are
    /// signed as in ``uploadPart(_:number:body:length:sha256:)``. A failed multipart upload is
    /// aborted before the error is thrown. With `ifNoneMatch`, an existing key gives
    /// ``S3PutOutcome/alreadyExists``.
    public func upload<Body: AsyncSequence & Sendable>(
        size: Int64, to key: String, sha256: String? = nil, ifNoneMatch: Bool = false, contentType: String? = nil,
        partSize: Int64 = 16 * 1024 * 1024, reading: (_ offset: Int64, _ length: Int64) -> Body
    ) async throws(S3Error) -> S3PutOutcome where Body.Element == ByteBuffer {
        guard partSize >= S3MultipartUpload.minimumPartSize, partSize <= S3MultipartUpload.maximumPartSize else {
            throw S3Error(.invalidArgument, "upload \(key): partSize must be 5 MiB to 5 GiB")
        }
        guard size >= 0 else { throw S3Error(.invalidArgument, "upload \(key): negative size") }
        if size <= partSize {
            return try await put(
                key, body: reading(0, size), length: size, sha256: sha256, ifNoneMatch: ifNoneMatch, contentType: contentType)
        }
        let count = Int64(S3MultipartUpload.maximumPartCount)
        let part = max(partSize, (size + count - 1) / count)
        guard part <= S3MultipartUpload.maximumPartSize else {
            throw S3Error(.invalidArgument, "upload \(key): \(size) bytes do not fit in 10,000 parts of 5 GiB")
        }
        let upload = try await createMultipartUpload(key, contentType: contentType)
        do {
            var parts: [S3CompletedPart] = []
            var offset: Int64 = 0
            while offset < size {
                let length = min(part, size - offset)
                parts.append(try await uploadPart(upload, number: parts.count + 1, body: reading(offset, length), length: length))
                offset += length
            }
            let outcome = try await completeMultipartUpload(upload, parts: parts, ifNoneMatch: ifNoneMatch)
            if outcome == .alreadyExists { try? await abortMultipartUpload(upload) }
            return outcome
        } catch {
            try? await abortMultipartUpload(upload)
            throw error
        }
    }
}
