import Foundation
import MirrorGateStorage
import MirrorGateUpstream
import NIOCore
import RegistryModel
import Synchronization


/// One upstream's part of a blob fetch: the head checks (size, range, room in the cache), then
/// the body pumped into the ingest under a watchdog.
extension BlobFetcher {
    enum TransferResult: Sendable {
        /// The body arrived to its end (the caller checks the digest).
        case complete
        /// The cache cannot take it.
        case storage(StorageError)
        /// The upstream did not deliver; its outcome is recorded in the walk.
        case answered
    }

    /// How pumping one body ended.
    enum PumpResult: Sendable {
        case complete
        case storage(StorageError)
        case failed(UpstreamAttempts.Failure)

        var transfer: TransferResult {
            switch self {
            case .complete: .complete
            case .storage(let error): .storage(error)
            case .failed: .answered
            }
        }
    }

    /// Moves bytes from one upstream into the ingest, continuing at `written`.
    func transfer(
        from upstream: Upstream, walk: inout UpstreamWalk, job: Job, spool: Spool, hasher: inout ContentHasher,
        written: inout UInt64, size: inout UInt64?
    ) async -> TransferResult {
        guard let response = await walk.send(to: upstream) else { return .answered }
        var skip: UInt64 = 0
        switch response.status {
        case 200:
            skip = written
            if let length = response.contentLength {
                if let size, size != length {
                    await response.discardBody()
                    walk.fail(upstream, .init(.badResponse, "size \(length) differs from \(size) announced earlier", status: 200))
                    return .answered
                }
                size = length
            }
        case 206 where written > 0:
            guard let range = response.header("content-range"), let start = Self.contentRangeStart(range), start == written else {
                await response.discardBody()
                walk.fail(upstream, .init(.badResponse, "206 with an unexpected Content-Range", status: 206))
                return .answered
            }
            if size == nil, let total = Self.contentRangeTotal(response.header("content-range") ?? "") { size = total }
        default:
            await walk.reject(response)
            return .answered
        }
        // What a hostile or broken upstream announces cannot switch caching off for everyone:
        // a blob over `storage.max_blob_size`, or one that does not fit the free space, is
        // that upstream's failure for that blob (its clients are then passed through, when
        // it merely does not fit, instead of cut off half-way).
        if let size, size > limits.maxBlobSize {
            await response.discardBody()
            walk.fail(upstream, .init(.tooLarge, "announced \(size) bytes, more than storage.max_blob_size (\(limits.maxBlobSize))"))
            return .answered
        }
        if written == 0, let size, let free = await blobs.availableSpace() {
            let digest = job.blob.digest
            let fits = reservations.withLock { reserved -> Bool in
                let others = reserved.filter { $0.key != digest }.values.reduce(0, +)
                guard free >= others + size + Self.spaceMargin else { return false }
                reserved[digest] = size
                return true
            }
            if !fits {
                await response.discardBody()
                job.blob.markTooLargeToCache()
                walk.fail(upstream, .init(.tooLarge, "\(size) bytes do not fit the cache's free space"))
                return .answered
            }
        }
        job.blob.publishHead(size: size)

        // The body's guards (GuardedBody) fail the transfer, and cancel the upstream request,
        // when no byte arrives for `stallTimeout` or the body comes slower than `minRate`.
        let body = response.body.guarded(by: .init(
            stallTimeout: limits.stallTimeout, minRate: limits.minRate, rateGrace: limits.rateGrace,
            maxLength: limits.maxBlobSize - min(limits.maxBlobSize, written - skip)))
        let outcome: PumpResult
        do {
            outcome = try await pump(body, skip: skip, knownSize: size, into: spool, blob: job.blob, hasher: &hasher, written: &written)
        } catch let storage as StorageError {
            outcome = .storage(storage)
        } catch let error as UpstreamError {
            outcome = switch error {
            case .timeout: .failed(.init(.timeout, error.description))
            case .protocolViolation: .failed(.init(.tooLarge, "body longer than storage.max_blob_size (\(limits.maxBlobSize))"))
            default: .failed(.init(.connection, "body failed: \(error)"))
            }
        } catch {
            outcome = .failed(.init(.connection, "body failed: \(UpstreamClient.classify(error))"))
        }
        if case .failed(let failure) = outcome {
            walk.fail(upstream, failure)
            return .answered
        }
        return outcome.transfer
    }

    /// Moves the body into the spool, skipping the first `skip` bytes (a 200 after a failover),
    /// hashing as it goes and making all but the newest chunk visible to readers.
    private func pump(
        _ body: GuardedBody, skip: UInt64, knownSize: UInt64?, into spool: Spool, blob: InFlightBlob,
        hasher: inout ContentHasher, written: inout UInt64
    ) async throws -> PumpResult {
        var skip = skip
        for try await var chunk in body {
            if skip > 0 {
                let drop = Int(min(skip, UInt64(chunk.readableBytes)))
                chunk.moveReaderIndex(forwardBy: drop)
                skip -= UInt64(drop)
                if chunk.readableBytes == 0 { continue }
            }
            if let knownSize, written + UInt64(chunk.readableBytes) > knownSize {
                return .failed(.init(.badResponse, "sent more bytes than its Content-Length"))
            }
            if written + UInt64(chunk.readableBytes) > limits.maxBlobSize {
                return .failed(.init(.tooLarge, "body longer than storage.max_blob_size (\(limits.maxBlobSize))"))
            }
            hasher.update(chunk)
            try await spool.write(chunk)
            // Everything but the newest chunk becomes visible to readers.
            blob.publishVisible(written)
            written += UInt64(chunk.readableBytes)
        }
        if let knownSize, written != knownSize {
            return .failed(.init(.badResponse, "body ended after \(written) of \(knownSize) bytes"))
        }
        return .complete
    }

    /// Space kept free beyond a blob's size (metadata, other fetches).
    static let spaceMargin: UInt64 = 8 << 20

    /// `bytes 100-199/1000` → 100 (bounded and checked by ``ContentRange``)
    static func contentRangeStart(_ header: String) -> UInt64? { ContentRange(header)?.first }

    /// `bytes 100-199/1000` → 1000 (bounded and checked by ``ContentRange``)
    static func contentRangeTotal(_ header: String) -> UInt64? { ContentRange(header)?.complete }
}
