import Foundation
import Logging
import MirrorGateStorage
import NIOCore
import RegistryModel

/// Blobs as objects in an S3 bucket, under `<prefix>blobs/<algorithm>/<2 hex>/<hex>` (the file
/// system store's layout), with spools on local disk (``SpoolDirectory``, `storage.path/tmp`).
///
/// A fetch writes its spool locally and every client following it reads that file; on
/// ``commit(_:verifiedAs:)`` the verified spool is uploaded (one PUT, or a multipart upload
/// for large blobs, read from the spool by offset) and then dropped. Objects appear whole or
/// not at all, and only after their digest verified; the caller writes the metadata row
/// after the commit returns (storage first, then metadata). Cached blobs are read back with
/// streamed, back-pressured GETs, or handed to clients as presigned URLs when `redirects`.
public struct S3BlobStore: BlobStore {
    public let client: S3Client
    let spools: SpoolDirectory
    /// Whether ``redirect(for:)`` hands out presigned URLs.
    public let redirects: Bool
    /// How long a presigned URL works.
    public let redirectExpiry: Duration
    /// Blobs larger than this are uploaded in parts of this size.
    let partSize: Int64
    let logger: Logger

    /// Ten minutes: long enough for a client to start its download after the redirect (S3
    /// checks the expiry when a request starts, not while it streams), short enough that an
    /// evicted blob's URL does not linger. distribution's S3 driver uses 20 minutes.
    public static let defaultRedirectExpiry: Duration = .seconds(600)

    /// Keys per listing page: 1,000, S3's maximum (smaller in tests).
    let listPageSize: Int

    /// - Parameters:
    ///   - partSize: blobs above this go up in parts of this size (at least 5 MiB).
    public init(
        client: S3Client, spools: SpoolDirectory, redirects: Bool = false, redirectExpiry: Duration = Self.defaultRedirectExpiry,
        partSize: Int64 = 16 << 20, logger: Logger
    ) {
        self.init(client: client, spools: spools, redirects: redirects, redirectExpiry: redirectExpiry, partSize: partSize, listPageSize: 1000, logger: logger)
    }

    init(
        client: S3Client, spools: SpoolDirectory, redirects: Bool, redirectExpiry: Duration, partSize: Int64, listPageSize: Int,
        logger: Logger
    ) {
        self.client = client
        self.spools = spools
        self.redirects = redirects
        self.redirectExpiry = redirectExpiry
        self.partSize = max(partSize, S3MultipartUpload.minimumPartSize)
        self.listPageSize = listPageSize
        self.logger = logger
    }

    /// The object key of `digest`, relative to the configured prefix.
    static func key(for digest: Digest) -> String {
        "blobs/\(digest.algorithm.rawValue)/\(digest.hex.prefix(2))/\(digest.hex)"
    }

    /// The digest a listed key stands for; nil for anything MirrorGate did not write there.
    static func digest(forKey key: String) -> Digest? {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "blobs", let digest = try? Digest(parsing: "\(parts[1]):\(parts[3])"),
            parts[2] == digest.hex.prefix(2)
        else { return nil }
        return digest
    }

    /// Runs one S3 call, reporting its failure as a ``StorageError``.
    private func s3<T>(_ operation: String, _ body: () async throws(S3Error) -> T) async throws(StorageError) -> T {
        do {
            return try await body()
        } catch {
            throw StorageError.s3(error, operation)
        }
    }

    // MARK: - Reading

    public func size(of digest: Digest) async throws(StorageError) -> UInt64? {
        try await s3("head blob") { () throws(S3Error) in try await client.head(Self.key(for: digest)).map { UInt64($0.size) } }
    }

    public func reader(for digest: Digest, range: ClosedRange<UInt64>?) async throws(StorageError) -> (any BlobReader)? {
        let requested = range.map { S3ByteRange.from(first: Int64($0.lowerBound), last: Int64($0.upperBound)) }
        guard let object = try await s3("read cached blob", { () throws(S3Error) in try await client.get(Self.key(for: digest), range: requested) })
        else { return nil }
        if let range, object.range != Int64(range.lowerBound)...Int64(range.upperBound) {
            // A store that ignored the range (200) or cut it at the end of the object: serving
            // this as the range asked for would send the wrong bytes.
            throw StorageError(
                .io, operation: "read cached blob",
                cause: "range \(range) is outside the \(object.info.size)-byte object, or the store ignored it")
        }
        return S3BlobReader(object: object, operation: "read cached blob")
    }

    public func redirect(for digest: Digest) async throws(StorageError) -> String? {
        guard redirects else { return nil }
        return try await s3("presign blob") { () throws(S3Error) in try client.presignedGET(Self.key(for: digest), expires: redirectExpiry) }
    }

    public func read(_ digest: Digest, limit: Int) async throws(StorageError) -> ByteBuffer? {
        guard let object = try await s3("read blob", { () throws(S3Error) in try await client.get(Self.key(for: digest)) }) else { return nil }
        guard object.contentLength <= limit else {
            // Dropping the body unread cancels the GET.
            throw StorageError(.io, operation: "read blob", cause: "larger than \(limit) bytes")
        }
        var buffer = ByteBufferAllocator().buffer(capacity: Int(object.contentLength))
        try await collect(object, operation: "read blob") { chunk in
            var chunk = chunk
            buffer.writeBuffer(&chunk)
        }
        return buffer
    }

    public func verify(_ digest: Digest) async throws(StorageError) -> Bool {
        guard let object = try await s3("verify blob", { () throws(S3Error) in try await client.get(Self.key(for: digest)) }) else {
            throw StorageError(.notFound, operation: "verify blob", cause: "no such object in the bucket")
        }
        var hasher = ContentHasher(digest.algorithm)
        try await collect(object, operation: "verify blob") { hasher.update($0) }
        return hasher.finalize() == digest
    }

    /// Every buffer of `object`'s body, in order.
    private func collect(_ object: S3Object, operation: String, _ body: (ByteBuffer) -> Void) async throws(StorageError) {
        do {
            for try await chunk in object.body { body(chunk) }
        } catch let error as S3Error {
            throw StorageError.s3(error, operation)
        } catch {
            throw StorageError(.unavailable, operation: operation, cause: "\(error)")
        }
    }

    // MARK: - Writing

    public func makeSpool(for digest: Digest) async throws(StorageError) -> Spool {
        try await spools.makeSpool(for: digest)
    }

    /// Uploads the verified spool with `If-None-Match: *`, so a blob already in the bucket (a
    /// 412) costs no second copy and counts as stored, then drops the local file (followers
    /// keep reading it through their open descriptor). sha256 blobs are signed with their
    /// digest as the payload hash and sent with `x-amz-checksum-sha256`, so the store checks
    /// the bytes it receives against the digest too; multipart parts are signed per chunk
    /// (or sent unsigned over TLS), as the client does for any body without a known hash.
    public func commit(_ spool: Spool, verifiedAs actual: Digest) async throws(StorageError) {
        let digest = spool.digest
        guard actual == digest else {
            await spool.discard()
            throw .digestMismatch(expected: digest, actual: actual)
        }
        do {
            // The bucket holds the durable copy; the spool only has to be complete.
            try await spool.finishWriting(durably: false)
            let size = try await spool.length()
            let sha256 = digest.algorithm == .sha256 ? digest.hex : nil
            let outcome = try await s3("upload blob") { () throws(S3Error) in
                try await client.upload(
                    size: Int64(size), to: Self.key(for: digest), sha256: sha256, ifNoneMatch: true, partSize: partSize
                ) { offset, length in
                    SpoolBody(spool: spool, offset: UInt64(offset), length: UInt64(length))
                }
            }
            logger.debug("blob stored in the bucket", metadata: [
                "digest": "\(digest)", "bytes": "\(size)", "already_there": "\(outcome == .alreadyExists)",
            ])
        } catch {
            await spool.discard()
            throw error
        }
        await spool.discard()
    }

    public func remove(_ digest: Digest) async throws(StorageError) {
        try await s3("remove blob") { () throws(S3Error) in try await client.delete(Self.key(for: digest)) }
    }

    // MARK: - Health

    /// Of the local spool directory: a fetch needs room there before its upload.
    public func availableSpace() async -> UInt64? {
        await spools.availableSpace()
    }

    /// The spool directory takes a write, and a small object can be put and deleted under the
    /// prefix (outside `blobs/`, so no listing takes it for a blob).
    public func probeWritable() async -> Bool {
        guard await spools.probeWritable() else { return false }
        let key = "write-probe/\(UUID().uuidString.lowercased())"
        do {
            _ = try await client.put(key, bytes: ByteBuffer(string: "MirrorGate write probe"))
            try await client.delete(key)
            return true
        } catch {
            logger.debug("bucket write probe failed", metadata: ["error": "\(error)"])
            return false
        }
    }

    // MARK: - Listing

    public func allBlobs() async throws(StorageError) -> [Digest: UInt64] {
        var all: [Digest: UInt64] = [:]
        var token: String?
        repeat {
            let (blobs, next) = try await page(after: token)
            all.merge(blobs) { _, new in new }
            token = next
        } while token != nil
        return all
    }

    public func forEachBlobPage(_ body: ([Digest: UInt64]) async throws -> Void) async throws {
        var token: String?
        repeat {
            let (blobs, next) = try await page(after: token)
            try await body(blobs)
            token = next
        } while token != nil
    }

    /// One page of ListObjectsV2 under `blobs`, and the token of the next.
    ///
    /// The listing prefix is `blobs`, without the slash, and keys that are not blobs are
    /// skipped: moto, the S3 the tests run against, rejects a correctly signed request whose
    /// query holds `%2F` when it checks signatures (see the S3 client tests' `MotoServer`).
    private func page(after token: String?) async throws(StorageError) -> ([Digest: UInt64], String?) {
        let listing = try await s3("list blobs") { () throws(S3Error) in
            try await client.list(prefix: "blobs", continuationToken: token, maxKeys: listPageSize)
        }
        var blobs: [Digest: UInt64] = [:]
        for entry in listing.entries {
            guard let digest = Self.digest(forKey: entry.key) else { continue }
            blobs[digest] = UInt64(max(entry.size, 0))
        }
        return (blobs, listing.nextContinuationToken)
    }
}
