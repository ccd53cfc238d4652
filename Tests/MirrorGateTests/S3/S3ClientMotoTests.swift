#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import Logging
@testable import MirrorGateS3
import NIOCore
import Testing

/// The client against a real `moto_server` that checks every request's SigV4 header signature
/// (`INITIAL_NO_AUTH_ACTION_COUNT`). One server for the suite; each test has its own key prefix.
///
/// moto does not check chunk signatures, payload hashes, `x-amz-checksum-sha256`, clock skew or
/// presigned URLs; the signer's unit tests (``SigV4SignerTests``) cover those with AWS's vectors.
@Suite("S3Client against moto_server (SigV4 checked)", .enabled(if: MotoServer.executable != nil, Comment(rawValue: MotoServer.skipMessage)), .motoServer(auth: true))
struct S3ClientMotoTests {
    var server: MotoServer { MotoServer.current! }

    @Test func putHeadGetRoundTrip() async throws {
        try await S3TestSupport.using(server.client()) { s3 in
            let content = S3TestSupport.randomBytes(1_048_576 + 17)
            let outcome = try await s3.put(
                "blobs/one", body: S3TestSupport.body(content), length: Int64(content.count),
                sha256: S3TestSupport.sha256Hex(content), contentType: "application/octet-stream")
            // moto's ETag is the MD5 of what it stored: the bytes arrived intact.
            #expect(outcome == .stored(etag: S3TestSupport.md5Hex(content)))

            let info = try #require(try await s3.head("blobs/one"))
            #expect(info.size == Int64(content.count))
            #expect(info.etag == S3TestSupport.md5Hex(content))

            let object = try #require(try await s3.get("blobs/one"))
            #expect(object.contentLength == Int64(content.count))
            #expect(object.range == 0...Int64(content.count - 1))
            #expect(try await S3TestSupport.read(object) == content)

            // A small in-memory object (a manifest) and an empty one.
            let manifest = ByteBuffer(string: #"{"schemaVersion":2}"#)
            #expect(try await s3.put("manifests/m", bytes: manifest, contentType: "application/json") != .alreadyExists)
            let back = try #require(try await s3.get("manifests/m"))
            #expect(try await S3TestSupport.read(back) == Array(manifest.readableBytesView))
            #expect(back.info.contentType == "application/json")
            _ = try await s3.put("empty", bytes: ByteBuffer())
            let empty = try #require(try await s3.get("empty"))
            #expect(empty.contentLength == 0 && empty.range == nil)
            #expect(try await S3TestSupport.read(empty).isEmpty)
        }
    }

    @Test func rangedGets() async throws {
        try await S3TestSupport.using(server.client()) { s3 in
            let content = S3TestSupport.randomBytes(300_000)
            _ = try await s3.put("r", body: S3TestSupport.body(content), length: Int64(content.count), sha256: S3TestSupport.sha256Hex(content))

            let middle = try #require(try await s3.get("r", range: .from(first: 100, last: 199)))
            #expect(middle.range == 100...199)
            #expect(middle.info.size == 300_000)
            #expect(middle.contentLength == 100)
            #expect(try await S3TestSupport.read(middle) == Array(content[100...199]))

            let tail = try #require(try await s3.get("r", range: .from(first: 299_990, last: nil)))
            #expect(tail.range == 299_990...299_999)
            #expect(try await S3TestSupport.read(tail) == Array(content[299_990...]))

            let suffix = try #require(try await s3.get("r", range: .suffix(length: 5)))
            #expect(try await S3TestSupport.read(suffix) == Array(content[299_995...]))

            let pastEnd = await S3TestSupport.s3Error { _ = try await s3.get("r", range: .from(first: 300_000, last: nil)) }
            #expect(pastEnd?.code == .rangeNotSatisfiable)
            #expect(pastEnd?.status == 416)
        }
    }

    /// Each part's body is asked for by offset and length, as the store's spool answers.
    static func slices(of bytes: [UInt8]) -> @Sendable (Int64, Int64) -> ByteBufferSequence {
        let buffer = ByteBuffer(bytes: bytes)
        return { offset, length in ByteBufferSequence(buffer: buffer.getSlice(at: Int(offset), length: Int(length))!) }
    }

    @Test func multipartUploadOf20MiBInParts() async throws {
        let content = S3TestSupport.randomBytes(20 * 1024 * 1024)
        try await S3TestSupport.using(server.client()) { s3 in
            // 6 MiB parts: three full ones and a 2 MiB remainder.
            let outcome = try await s3.upload(
                size: Int64(content.count), to: "blobs/big", sha256: S3TestSupport.sha256Hex(content),
                partSize: 6 * 1024 * 1024, reading: Self.slices(of: content))
            guard case .stored(let etag) = outcome else {
                Issue.record("not stored: \(outcome)")
                return
            }
            #expect(etag?.hasSuffix("-4") == true)
            let info = try #require(try await s3.head("blobs/big"))
            #expect(info.size == Int64(content.count))

            let object = try #require(try await s3.get("blobs/big"))
            var hasher = SHA256()
            var count = 0
            for try await chunk in object.body {
                hasher.update(data: chunk.readableBytesView)
                count += chunk.readableBytes
            }
            #expect(count == content.count)
            #expect(hasher.finalize().map { String(format: "%02x", $0) }.joined() == S3TestSupport.sha256Hex(content))
            // Nothing left behind.
            #expect(try await s3.listMultipartUploads().uploads.isEmpty)
        }
    }

    @Test func abortedUploadsLeaveTheListing() async throws {
        try await S3TestSupport.using(server.client()) { s3 in
            let upload = try await s3.createMultipartUpload("blobs-orphan")
            let part = S3TestSupport.randomBytes(5 * 1024 * 1024)
            let uploaded = try await s3.uploadPart(upload, number: 1, body: S3TestSupport.body(part), length: Int64(part.count))
            #expect(!uploaded.etag.isEmpty)
            let other = try await s3.createMultipartUpload("other-x")

            let listed = try await s3.listMultipartUploads(prefix: "blobs-")
            #expect(listed.uploads.map(\.key) == ["blobs-orphan"])
            #expect(listed.uploads.first?.uploadID == upload.uploadID)
            // Parsed; moto 5.2.1 always answers 2010-11-10T20:48:33.000Z here, so no more can be checked.
            #expect(listed.uploads.first?.initiated != nil)

            try await s3.abortMultipartUpload(upload)
            #expect(try await s3.listMultipartUploads(prefix: "blobs-").uploads.isEmpty)
            // Aborting twice is not an error. (A part for, or the completion of, an aborted upload
            // makes moto 5.2.1 answer 500 instead of 404 NoSuchUpload, so neither is tried here.)
            try await s3.abortMultipartUpload(upload)
            #expect(try await s3.head("blobs-orphan") == nil)
            try await s3.abortMultipartUpload(other)
        }
    }

    @Test func ifNoneMatchReportsAlreadyExists() async throws {
        try await S3TestSupport.using(server.client()) { s3 in
            let first = ByteBuffer(string: "first")
            #expect(try await s3.put("k", bytes: first, ifNoneMatch: true) != .alreadyExists)
            #expect(try await s3.put("k", bytes: ByteBuffer(string: "second"), ifNoneMatch: true) == .alreadyExists)
            let stored = try #require(try await s3.get("k"))
            #expect(try await S3TestSupport.read(stored) == Array("first".utf8))
            // Without the condition the PUT overwrites.
            #expect(try await s3.put("k", bytes: ByteBuffer(string: "third")) != .alreadyExists)
        }
    }

    @Test func ifNoneMatchOnUploadsSingleAndMultipart() async throws {
        let small = S3TestSupport.randomBytes(1000)
        let large = S3TestSupport.randomBytes(5 * 1024 * 1024 + 1)
        try await S3TestSupport.using(server.client()) { s3 in
            for (name, bytes) in [("small", small), ("large", large)] {
                let size = Int64(bytes.count)
                let sha = S3TestSupport.sha256Hex(bytes)
                let first = try await s3.upload(
                    size: size, to: name, sha256: sha, ifNoneMatch: true, partSize: 5 * 1024 * 1024, reading: Self.slices(of: bytes))
                #expect(first != .alreadyExists, "\(name)")
                let again = try await s3.upload(
                    size: size, to: name, sha256: sha, ifNoneMatch: true, partSize: 5 * 1024 * 1024, reading: Self.slices(of: bytes))
                #expect(again == .alreadyExists, "\(name)")
                let object = try #require(try await s3.get(name))
                #expect(try await S3TestSupport.read(object) == bytes, "\(name)")
            }
            // The refused multipart upload was aborted, not left behind.
            #expect(try await s3.listMultipartUploads().uploads.isEmpty)
        }
    }

    @Test func deletedObjectsAreAbsent() async throws {
        try await S3TestSupport.using(server.client()) { s3 in
            _ = try await s3.put("d", bytes: ByteBuffer(string: "x"))
            #expect(try await s3.head("d") != nil)
            try await s3.delete("d")
            #expect(try await s3.head("d") == nil)
            #expect(try await s3.get("d") == nil)
            try await s3.delete("d")
            #expect(try await s3.head("never-written") == nil)
        }
    }

    @Test func listPagesWithContinuation() async throws {
        try await S3TestSupport.using(server.client()) { s3 in
            let keys = (0..<7).map { "list-k\($0)/blob" }
            for key in keys { _ = try await s3.put(key, bytes: ByteBuffer(string: key)) }
            _ = try await s3.put("lister-x", bytes: ByteBuffer(string: "x"))

            var pages: [[String]] = []
            var token: String?
            repeat {
                let page = try await s3.list(prefix: "list-", continuationToken: token, maxKeys: 3)
                pages.append(page.entries.map(\.key))
                #expect(page.entries.allSatisfy { $0.size == Int64($0.key.utf8.count) })
                token = page.nextContinuationToken
            } while token != nil && pages.count < 10
            #expect(pages.map(\.count) == [3, 3, 1])
            #expect(pages.flatMap { $0 } == keys)
            #expect(try await s3.list().entries.count == 8)
            #expect(try await s3.list(prefix: "nothing-here").entries.isEmpty)
        }
    }

    @Test func keysWithSpacesAndSlashes() async throws {
        // What moto can check with signatures on (see MotoServer.client); the other characters
        // are in S3PresignAndStallTests.
        try await S3TestSupport.using(server.client(prefix: "t\(UUID().uuidString.prefix(8)) enc-")) { s3 in
            let key = "a b/c  d//~x_y-z.txt"
            _ = try await s3.put(key, bytes: ByteBuffer(string: "encoded"))
            let object = try #require(try await s3.get(key))
            #expect(try await S3TestSupport.read(object) == Array("encoded".utf8))
            #expect(try await s3.list(prefix: "a b").entries.map(\.key) == [key])
            try await s3.delete(key)
            #expect(try await s3.head(key) == nil)
        }
    }

    @Test func unsignedBodyOverHTTPGoesAsSignedChunks() async throws {
        // Without a known SHA-256 over plain http the body is aws-chunked with chunk signatures;
        // moto decodes the framing (it does not check the chunk signatures).
        try await S3TestSupport.using(server.client()) { s3 in
            let content = S3TestSupport.randomBytes(200_003)
            let outcome = try await s3.put("chunked", body: S3TestSupport.body(content, chunk: 30_000), length: Int64(content.count))
            #expect(outcome == .stored(etag: S3TestSupport.md5Hex(content)))
            let object = try #require(try await s3.get("chunked"))
            #expect(try await S3TestSupport.read(object) == content)
            // A part without a hash too, with a body whose buffers do not align with the chunks.
            let upload = try await s3.createMultipartUpload("chunked-parts")
            let part = S3TestSupport.randomBytes(5 * 1024 * 1024 + 1)
            let done = try await s3.uploadPart(upload, number: 1, body: S3TestSupport.body(part, chunk: 77_777), length: Int64(part.count))
            #expect(done.etag == S3TestSupport.md5Hex(part))
            try await s3.abortMultipartUpload(upload)
        }
    }

    @Test func wrongSecretIsForbiddenNeverAbsent() async throws {
        try await S3TestSupport.using(server.client()) { s3 in
            _ = try await s3.put("present", bytes: ByteBuffer(string: "x"))
        }
        let prefix = "t-\(UUID().uuidString.prefix(8))/"
        try await S3TestSupport.using(server.client(prefix: prefix, secretAccessKey: "not-the-secret")) { s3 in
            for (name, operation) in [
                ("HEAD absent", { _ = try await s3.head("missing") }),
                ("GET absent", { _ = try await s3.get("missing") }),
                ("PUT", { _ = try await s3.put("k", bytes: ByteBuffer(string: "x")) }),
                ("DELETE", { try await s3.delete("k") }),
                ("LIST", { _ = try await s3.list() }),
                ("check", { try await s3.checkAccess() }),
                ("CREATE UPLOAD", { _ = try await s3.createMultipartUpload("k") }),
            ] as [(String, () async throws -> Void)] {
                let error = await S3TestSupport.s3Error(operation)
                #expect(error?.code == .forbidden, "\(name): \(String(describing: error))")
                #expect(error?.category == .misconfigured, "\(name)")
            }
            let listing = await S3TestSupport.s3Error { _ = try await s3.list() }
            #expect(listing?.s3Code == "SignatureDoesNotMatch")
            #expect(listing?.status == 403)
        }
        try await S3TestSupport.using(server.client(accessKeyID: "AKIANOTAKEY000000000")) { s3 in
            let error = await S3TestSupport.s3Error { try await s3.checkAccess() }
            #expect(error?.code == .forbidden)
            #expect(error?.s3Code == "InvalidAccessKeyId")
        }
    }

    @Test func missingBucketIsMisconfiguredNotAbsent() async throws {
        try await S3TestSupport.using(server.client(bucket: "no-such-bucket")) { s3 in
            let check = await S3TestSupport.s3Error { try await s3.checkAccess() }
            #expect(check?.code == .bucketNotFound)
            #expect(check?.category == .misconfigured)
            let get = await S3TestSupport.s3Error { _ = try await s3.get("k") }
            #expect(get?.code == .bucketNotFound)
        }
    }
}

/// Failures that need no store at all.
@Suite("S3Client without a store")
struct S3ClientTransportTests {
    @Test func refusedConnectionIsUnavailable() async throws {
        let port = try MotoServer.freePort()
        let s3 = try S3Client(
            configuration: S3Configuration(
                endpoint: "http://127.0.0.1:\(port)", region: "us-east-1", bucket: "b-b", addressing: .pathStyle,
                accessKeyID: "a", secretAccessKey: "b", timeout: .seconds(5)),
            logger: .init(label: "t") { _ in SwiftLogNoOpLogHandler() })
        try await S3TestSupport.using(s3) { s3 in
            let error = await S3TestSupport.s3Error { _ = try await s3.head("k") }
            #expect(error?.code == .transport)
            #expect(error?.category == .unavailable)
        }
    }

    @Test func silentServerTimesOut() async throws {
        // A socket that listens but never accepts: the kernel completes the handshake and takes
        // the request, and no answer ever comes.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        #expect(listening)
        let s3 = try S3Client(
            configuration: S3Configuration(
                endpoint: "http://127.0.0.1:\(UInt16(bigEndian: address.sin_port))", region: "us-east-1", bucket: "b-b",
                addressing: .pathStyle, accessKeyID: "a", secretAccessKey: "b", timeout: .seconds(1)),
            logger: .init(label: "t") { _ in SwiftLogNoOpLogHandler() })
        try await S3TestSupport.using(s3) { s3 in
            let error = await S3TestSupport.s3Error { _ = try await s3.head("k") }
            #expect(error?.code == .timeout, "\(String(describing: error))")
            #expect(error?.category == .unavailable)
        }
    }
}
