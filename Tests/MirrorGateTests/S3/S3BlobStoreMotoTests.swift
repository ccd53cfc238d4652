import AsyncHTTPClient
import Foundation
import Logging
@testable import MirrorGateS3
import MirrorGateStorage
import NIOCore
import RegistryModel
import Testing

/// A store on one bucket prefix of the suite's moto_server, with its spools in a temporary directory.
struct S3StoreFixture {
    let store: S3BlobStore
    let directory: TemporaryDirectory
    var spoolDirectory: String { directory.path + "/tmp" }

    static let logger = Logger(label: "s3-store-test") { _ in SwiftLogNoOpLogHandler() }

    init(_ server: MotoServer, secretAccessKey: String? = nil, bucket: String? = nil, redirects: Bool = false, listPageSize: Int = 1000) throws {
        directory = try TemporaryDirectory("s3-store")
        store = S3BlobStore(
            client: try server.client(secretAccessKey: secretAccessKey, bucket: bucket),
            spools: try SpoolDirectory(path: directory.path + "/tmp", logger: Self.logger), redirects: redirects,
            redirectExpiry: .seconds(300), partSize: 5 << 20, listPageSize: listPageSize, logger: Self.logger)
    }

    /// Runs `body`, then shuts the client down and removes the directory, also on a thrown error.
    static func using<T>(_ fixture: S3StoreFixture, _ body: (S3BlobStore) async throws -> T) async throws -> T {
        defer { fixture.directory.cleanUp() }
        return try await S3TestSupport.using(fixture.store.client) { _ in try await body(fixture.store) }
    }

    static func digest(_ bytes: [UInt8]) -> Digest {
        var hasher = ContentHasher(.sha256)
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// Spools `content` in chunks, as a fetch does, and commits it.
    static func commit(_ content: [UInt8], to store: S3BlobStore, as digest: Digest? = nil) async throws -> Digest {
        let digest = digest ?? Self.digest(content)
        let spool = try await store.makeSpool(for: digest)
        var offset = 0
        while offset < content.count {
            let end = min(offset + 70_000, content.count)
            try await spool.write(ByteBuffer(bytes: content[offset..<end]))
            offset = end
        }
        try await store.commit(spool, verifiedAs: digest)
        return digest
    }

    static func drain(_ reader: any BlobReader) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        try await reader.stream { bytes += $0.readableBytesView }
        return bytes
    }

    /// The StorageError `body` throws (failing the test when it throws none or another error).
    static func storageError(_ body: () async throws -> Void) async -> StorageError? {
        do {
            try await body()
            Issue.record("expected a StorageError, got success")
        } catch let error as StorageError {
            return error
        } catch {
            Issue.record("expected a StorageError, got \(error)")
        }
        return nil
    }
}

/// ``S3BlobStore`` against a real `moto_server` that checks every request's SigV4 signature.
@Suite(
    "S3BlobStore against moto_server (SigV4 checked)",
    .enabled(if: MotoServer.executable != nil, Comment(rawValue: MotoServer.skipMessage)), .motoServer(auth: true))
struct S3BlobStoreMotoTests {
    var server: MotoServer { MotoServer.current! }

    @Test func commitsASmallSpoolWithOnePutAndReadsItBack() async throws {
        let fixture = try S3StoreFixture(server)
        try await S3StoreFixture.using(fixture) { store throws in
            let content = S3TestSupport.randomBytes(300_001)
            let digest = try await S3StoreFixture.commit(content, to: store)

            // Under the file system's layout, and the local spool is gone.
            let key = "blobs/sha256/\(digest.hex.prefix(2))/\(digest.hex)"
            let info = try #require(try await store.client.head(key))
            #expect(info.etag == S3TestSupport.md5Hex(content), "one PUT of exactly these bytes")
            #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.spoolDirectory).isEmpty)

            #expect(try await store.size(of: digest) == UInt64(content.count))
            let whole = try #require(try await store.reader(for: digest, range: nil))
            #expect(whole.length == UInt64(content.count))
            #expect(try await S3StoreFixture.drain(whole) == content)
            let range = try #require(try await store.reader(for: digest, range: 1000...1999))
            #expect(range.length == 1000)
            #expect(try await S3StoreFixture.drain(range) == Array(content[1000...1999]))
            let tail = try #require(try await store.reader(for: digest, range: 300_000...300_000))
            #expect(try await S3StoreFixture.drain(tail) == [content[300_000]])
            #expect(try await store.read(digest, limit: 1 << 20).map { Array($0.readableBytesView) } == content)
            #expect(try await store.verify(digest))
            #expect(try await store.allBlobs() == [digest: UInt64(content.count)])

            // A range past the end is an error, never a short body.
            let past = await S3StoreFixture.storageError { _ = try await store.reader(for: digest, range: 300_000...300_100) }
            #expect(past?.code == .io)
            let tooLarge = await S3StoreFixture.storageError { _ = try await store.read(digest, limit: 1000) }
            #expect(tooLarge?.code == .io)
        }
    }

    @Test func commitsALargeSpoolAsAMultipartUploadReadFromTheSpool() async throws {
        let fixture = try S3StoreFixture(server)
        try await S3StoreFixture.using(fixture) { store throws in
            // 5 MiB parts: two full ones and a remainder.
            let content = S3TestSupport.randomBytes(11 * 1024 * 1024 + 3)
            let digest = try await S3StoreFixture.commit(content, to: store)
            let info = try #require(try await store.client.head(S3BlobStore.key(for: digest)))
            #expect(info.etag?.hasSuffix("-3") == true, "\(String(describing: info.etag))")
            #expect(info.size == Int64(content.count))
            #expect(try await store.verify(digest))
            let middle = try #require(try await store.reader(for: digest, range: 5_242_870...5_242_889))
            #expect(try await S3StoreFixture.drain(middle) == Array(content[5_242_870...5_242_889]))
            #expect(try await store.client.listMultipartUploads().uploads.isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.spoolDirectory).isEmpty)
        }
    }

    /// The commit sends `If-None-Match: *`: an object already under the key stays as it is
    /// (the 412 counts as stored) and no second copy is uploaded, single PUT or multipart.
    @Test(arguments: [1000, 6 * 1024 * 1024])
    func anObjectAlreadyThereIsKeptAndTheCommitSucceeds(size: Int) async throws {
        let fixture = try S3StoreFixture(server)
        try await S3StoreFixture.using(fixture) { store throws in
            let content = S3TestSupport.randomBytes(size)
            let digest = S3StoreFixture.digest(content)
            // Another writer's copy, told apart here by different bytes.
            let marker = ByteBuffer(string: "written first")
            #expect(try await store.client.put(S3BlobStore.key(for: digest), bytes: marker) != .alreadyExists)

            _ = try await S3StoreFixture.commit(content, to: store)

            let kept = try #require(try await store.client.get(S3BlobStore.key(for: digest)))
            #expect(try await S3TestSupport.read(kept) == Array(marker.readableBytesView))
            #expect(try await store.client.listMultipartUploads().uploads.isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.spoolDirectory).isEmpty)
        }
    }

    @Test func aMismatchedDigestIsNeverUploaded() async throws {
        let fixture = try S3StoreFixture(server)
        try await S3StoreFixture.using(fixture) { store throws in
            let content = S3TestSupport.randomBytes(5000)
            let claimed = S3StoreFixture.digest(content)
            let spool = try await store.makeSpool(for: claimed)
            try await spool.write(ByteBuffer(bytes: content))
            let actual = S3StoreFixture.digest(content + [0])
            let error = await S3StoreFixture.storageError { try await store.commit(spool, verifiedAs: actual) }
            #expect(error?.code == .digestMismatch)
            #expect(try await store.size(of: claimed) == nil)
            #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.spoolDirectory).isEmpty)
        }
    }

    @Test func removedBlobsAreAbsent() async throws {
        let fixture = try S3StoreFixture(server)
        try await S3StoreFixture.using(fixture) { store throws in
            let digest = try await S3StoreFixture.commit(Array("remove me".utf8), to: store)
            #expect(try await store.size(of: digest) != nil)
            try await store.remove(digest)
            #expect(try await store.size(of: digest) == nil)
            #expect(try await store.reader(for: digest, range: nil) == nil)
            #expect(try await store.read(digest, limit: 100) == nil)
            #expect(try await store.allBlobs().isEmpty)
            // Removing twice is not an error; verifying what is gone is.
            try await store.remove(digest)
            #expect(await S3StoreFixture.storageError { _ = try await store.verify(digest) }?.code == .notFound)
        }
    }

    @Test func theListingIsPagedAndSkipsWhatIsNotABlob() async throws {
        let fixture = try S3StoreFixture(server, listPageSize: 3)
        try await S3StoreFixture.using(fixture) { store throws in
            var expected: [Digest: UInt64] = [:]
            for i in 0..<7 {
                let content = Array("blob \(i)".utf8) + S3TestSupport.randomBytes(i)
                expected[try await S3StoreFixture.commit(content, to: store)] = UInt64(content.count)
            }
            // Keys under blobs that MirrorGate did not write, and one beside it.
            for key in ["blobs/sha256/zz/not-a-digest", "blobs/sha256/00/" + String(repeating: "1", count: 64), "blobsy", "write-probe/x"] {
                _ = try await store.client.put(key, bytes: ByteBuffer(string: "x"))
            }
            var pages: [[Digest: UInt64]] = []
            try await store.forEachBlobPage { pages.append($0) }
            #expect(pages.count >= 3, "7 blobs and 4 other keys in pages of 3")
            #expect(pages.allSatisfy { $0.count <= 3 })
            #expect(pages.reduce(into: [:]) { $0.merge($1) { a, _ in a } } == expected)
            #expect(try await store.allBlobs() == expected)
        }
    }

    @Test func probeWritableLeavesNothingBehind() async throws {
        let fixture = try S3StoreFixture(server)
        try await S3StoreFixture.using(fixture) { store throws in
            #expect(await store.probeWritable())
            #expect(try await store.client.list().entries.isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.spoolDirectory).isEmpty)
            #expect(await store.availableSpace() ?? 0 > 0)
        }
    }

    /// A wrong secret is a failure that says so, never a miss: the store would otherwise look
    /// empty, and every pull would refetch and fail to store.
    @Test func aWrongSecretIsReadOnlyNeverAMiss() async throws {
        let good = try S3StoreFixture(server)
        let digest = try await S3StoreFixture.using(good) { try await S3StoreFixture.commit(Array("present".utf8), to: $0) }
        let fixture = try S3StoreFixture(server, secretAccessKey: "not-the-secret")
        try await S3StoreFixture.using(fixture) { store throws in
            let operations: [(String, () async throws -> Void)] = [
                ("size", { _ = try await store.size(of: digest) }),
                ("reader", { _ = try await store.reader(for: digest, range: nil) }),
                ("read", { _ = try await store.read(digest, limit: 100) }),
                ("remove", { try await store.remove(digest) }),
                ("list", { _ = try await store.allBlobs() }),
                ("commit", { _ = try await S3StoreFixture.commit(Array("new".utf8), to: store) }),
            ]
            for (name, operation) in operations {
                let error = await S3StoreFixture.storageError(operation)
                #expect(error?.code == .readOnly, "\(name): \(String(describing: error))")
                // A HEAD's 403 has no error document to name S3's code.
                #expect(error?.cause.contains(name == "size" ? "(403)" : "(403 SignatureDoesNotMatch)") == true, "\(name): \(String(describing: error))")
                #expect(error?.cause.contains("storage.s3.access_key_id") == true, "\(name)")
                #expect(error?.isOutOfSpaceOrReadOnly == true)
            }
            #expect(await store.probeWritable() == false)
            #expect(try FileManager.default.contentsOfDirectory(atPath: fixture.spoolDirectory).isEmpty)
        }
    }

    @Test func aMissingBucketNamesTheBucketKey() async throws {
        let fixture = try S3StoreFixture(server, bucket: "no-such-bucket")
        try await S3StoreFixture.using(fixture) { store throws in
            // (A HEAD answers a bare 404 in a missing bucket, the same as for a missing object:
            // start-up lists the bucket to tell them apart. A GET's or PUT's error document tells.)
            let read = await S3StoreFixture.storageError { _ = try await store.read(S3StoreFixture.digest([1]), limit: 10) }
            #expect(read?.code == .readOnly)
            #expect(read?.cause.contains("storage.s3.bucket") == true, "\(String(describing: read))")
            let commit = await S3StoreFixture.storageError { _ = try await S3StoreFixture.commit([1, 2, 3], to: store) }
            #expect(commit?.code == .readOnly)
            #expect(commit?.cause.contains("404 NoSuchBucket") == true, "\(String(describing: commit))")
        }
    }

    @Test func openChecksTheCredentialsAtStartUp() async throws {
        let directory = try TemporaryDirectory("s3-open")
        defer { directory.cleanUp() }
        func configuration(secret: String, bucket: String? = nil) -> S3Configuration {
            S3Configuration(
                endpoint: server.endpoint, region: "us-east-1", bucket: bucket ?? server.bucket, prefix: "open-", addressing: .pathStyle,
                accessKeyID: server.accessKeyID, secretAccessKey: secret)
        }
        let store = try await S3BlobStore.open(
            configuration: configuration(secret: server.secretAccessKey), spoolDirectory: directory.path + "/tmp", redirects: false,
            logger: S3StoreFixture.logger)
        try await store.client.shutdown()

        for (secret, bucket, expected) in [
            ("wrong-secret", nil, "SignatureDoesNotMatch"), (server.secretAccessKey, "absent-bucket", "NoSuchBucket"),
        ] {
            do {
                _ = try await S3BlobStore.open(
                    configuration: configuration(secret: secret, bucket: bucket), spoolDirectory: directory.path + "/tmp",
                    redirects: false, logger: S3StoreFixture.logger)
                Issue.record("opened with \(expected)")
            } catch let error as S3BlobStore.StartupError {
                #expect(error.description.hasPrefix("storage.s3: cannot use bucket"), "\(error)")
                #expect(error.description.contains(expected), "\(error)")
                #expect(!error.description.contains(server.secretAccessKey), "\(error)")
            }
        }
    }
}

/// Presigned redirects need a moto_server without signature checking: with checking on, moto
/// 5.2.1 answers a presigned GET with a 500 (it looks for an `Authorization` header).
@Suite(
    "S3BlobStore redirects against moto_server",
    .enabled(if: MotoServer.executable != nil, Comment(rawValue: MotoServer.skipMessage)), .motoServer(auth: false))
struct S3BlobStoreRedirectTests {
    var server: MotoServer { MotoServer.current! }

    @Test func theRedirectURLServesTheBlobToAPlainClient() async throws {
        let fixture = try S3StoreFixture(server, redirects: true)
        try await S3StoreFixture.using(fixture) { store throws in
            let content = S3TestSupport.randomBytes(123_457)
            let digest = try await S3StoreFixture.commit(content, to: store)
            let url = try #require(try await store.redirect(for: digest))
            #expect(url.contains("X-Amz-Expires=300"))
            #expect(url.contains("X-Amz-Signature="))
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
            #expect(response.status == .ok)
            #expect(Array(try await response.body.collect(upTo: 1 << 20).readableBytesView) == content)
        }
        let plain = try S3StoreFixture(server, redirects: false)
        try await S3StoreFixture.using(plain) { store throws in
            #expect(try await store.redirect(for: S3StoreFixture.digest([1])) == nil)
        }
    }
}

/// How S3 failures become storage failures, without a store.
@Suite("S3 errors as StorageError")
struct S3StorageErrorTests {
    static func mapped(_ status: Int, _ code: String?) -> StorageError {
        StorageError.s3(S3Error.from(status: status, s3Code: code, s3Message: "m", requestID: "r", operation: "PUT k"), "upload blob")
    }

    @Test func codes() {
        #expect(Self.mapped(404, "NoSuchKey").code == .notFound)
        #expect(Self.mapped(403, "SignatureDoesNotMatch").code == .readOnly)
        #expect(Self.mapped(403, "AccessDenied").code == .readOnly)
        #expect(Self.mapped(404, "NoSuchBucket").code == .readOnly)
        #expect(Self.mapped(301, "PermanentRedirect").code == .readOnly)
        #expect(Self.mapped(503, "SlowDown").code == .unavailable)
        #expect(Self.mapped(500, "InternalError").code == .unavailable)
        #expect(Self.mapped(400, "InvalidRequest").code == .io)
        // Full stores, including Ceph's quota, which comes as a 403.
        #expect(Self.mapped(507, nil).code == .resourceExhausted)
        #expect(Self.mapped(507, "XMinioStorageFull").code == .resourceExhausted)
        #expect(Self.mapped(403, "QuotaExceeded").code == .resourceExhausted)
        #expect(StorageError.s3(S3Error(.transport, "connection refused"), "head blob").code == .unavailable)
        #expect(StorageError.s3(S3Error(.timeout, "no answer"), "head blob").code == .unavailable)
    }

    @Test func theCauseNamesTheAnswerAndTheKeysButNotS3sMessage() {
        let error = Self.mapped(404, "NoSuchBucket")
        #expect(error.description == "upload blob: the bucket does not exist (404 NoSuchBucket); check storage.s3.bucket (the gateway does not create buckets)")
        #expect(error.logDescription.contains("[request r]"))
        #expect(Self.mapped(503, "SlowDown").description.contains("(503 SlowDown)"))
    }

    @Test func keysMirrorTheFileSystemLayout() throws {
        let digest = try Digest(parsing: "sha256:" + String(repeating: "ab", count: 32))
        #expect(S3BlobStore.key(for: digest) == "blobs/sha256/ab/" + digest.hex)
        #expect(S3BlobStore.digest(forKey: S3BlobStore.key(for: digest)) == digest)
        let sha512 = try Digest(parsing: "sha512:" + String(repeating: "0c", count: 64))
        #expect(S3BlobStore.digest(forKey: S3BlobStore.key(for: sha512)) == sha512)
        #expect(S3BlobStore.digest(forKey: "blobs/sha256/cd/" + digest.hex) == nil)
        #expect(S3BlobStore.digest(forKey: "blobs/md5/ab/abcd") == nil)
        #expect(S3BlobStore.digest(forKey: "x/blobs/sha256/ab/" + digest.hex) == nil)
    }
}
