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

        // Pump the body in a child task; a watchdog child fails the transfer (and cancels the
        // pump, which cancels the upstream request) when no byte arrives for `stallTimeout`,
        // or when the body arrives slower than `minRate` for a whole `rateGrace`.
        let progress = ProgressClock()
        let limits = limits
        let stall = limits.stallTimeout
        let blob = job.blob
        let startHasher = hasher
        let startWritten = written
        let knownSize = size
        let skipStart = skip
        let body = response.body
        enum Child: Sendable {
            case watchdog(PumpResult)
            case pump(PumpResult, ContentHasher, UInt64)
        }
        let (outcome, finalHasher, finalWritten) = await withTaskGroup(of: Child.self) { group in
            group.addTask {
                var window = (start: ContinuousClock.now, bytes: UInt64(0))
                while !Task.isCancelled {
                    try? await Task.sleep(for: min(stall / 4, .seconds(1)))
                    if progress.idle > stall {
                        return .watchdog(.failed(.init(.timeout, "body stalled for more than \(stall)")))
                    }
                    let now = ContinuousClock.now
                    if limits.minRate > 0, now - window.start >= limits.rateGrace {
                        let bytes = progress.bytes
                        let rate = Double(bytes - window.bytes) / (now - window.start).seconds
                        if rate < Double(limits.minRate) {
                            return .watchdog(.failed(.init(.timeout, "body arrived at \(Int(rate)) B/s for \(limits.rateGrace), below limits.min_fetch_rate (\(limits.minRate) B/s)")))
                        }
                        window = (now, bytes)
                    }
                }
                return .watchdog(.complete)
            }
            group.addTask {
                var hasher = startHasher
                var written = startWritten
                var skip = skipStart
                var result: PumpResult = .complete
                do {
                    for try await var chunk in body {
                        progress.tick()
                        if skip > 0 {
                            let drop = Int(min(skip, UInt64(chunk.readableBytes)))
                            chunk.moveReaderIndex(forwardBy: drop)
                            skip -= UInt64(drop)
                            if chunk.readableBytes == 0 { continue }
                        }
                        if let knownSize, written + UInt64(chunk.readableBytes) > knownSize {
                            result = .failed(.init(.badResponse, "sent more bytes than its Content-Length"))
                            break
                        }
                        if written + UInt64(chunk.readableBytes) > limits.maxBlobSize {
                            result = .failed(.init(.tooLarge, "body longer than storage.max_blob_size (\(limits.maxBlobSize))"))
                            break
                        }
                        hasher.update(chunk)
                        try await spool.write(chunk)
                        // Everything but the newest chunk becomes visible to readers.
                        blob.publishVisible(written)
                        written += UInt64(chunk.readableBytes)
                        progress.tick(bytes: chunk.readableBytes)
                    }
                    if case .complete = result, let knownSize, written != knownSize {
                        result = .failed(.init(.badResponse, "body ended after \(written) of \(knownSize) bytes"))
                    }
                } catch let storage as StorageError {
                    result = .storage(storage)
                } catch {
                    result = .failed(.init(.connection, "body failed: \(UpstreamClient.classify(error))"))
                }
                return .pump(result, hasher, written)
            }
            var verdict: PumpResult?
            var pumped: (PumpResult, ContentHasher, UInt64)?
            while let child = await group.next() {
                switch child {
                case .watchdog(let result):
                    if case .failed = result, pumped == nil { verdict = result }
                    group.cancelAll()
                case .pump(let result, let hasher, let written):
                    pumped = (result, hasher, written)
                    group.cancelAll()
                }
            }
            let (result, hasher, written) = pumped!
            return (verdict ?? result, hasher, written)
        }
        hasher = finalHasher
        written = finalWritten
        if case .failed(let failure) = outcome {
            walk.fail(upstream, failure)
            return .answered
        }
        return outcome.transfer
    }

    /// Space kept free beyond a blob's size (metadata, other fetches).
    static let spaceMargin: UInt64 = 8 << 20

    /// `bytes 100-199/1000` → 100 (bounded and checked by ``ContentRange``)
    static func contentRangeStart(_ header: String) -> UInt64? { ContentRange(header)?.first }

    /// `bytes 100-199/1000` → 1000 (bounded and checked by ``ContentRange``)
    static func contentRangeTotal(_ header: String) -> UInt64? { ContentRange(header)?.complete }
}

/// Milliseconds since the last byte of a transfer, and the bytes so far, readable from a
/// watchdog task.
final class ProgressClock: Sendable {
    private let start = ContinuousClock.now
    private let lastTick = Atomic<Int64>(0)
    private let count = Atomic<UInt64>(0)

    func tick(bytes: Int = 0) {
        lastTick.store(Int64((ContinuousClock.now - start) / .milliseconds(1)), ordering: .relaxed)
        if bytes > 0 { count.add(UInt64(bytes), ordering: .relaxed) }
    }

    /// Body bytes pumped so far.
    var bytes: UInt64 { count.load(ordering: .relaxed) }

    /// Time since the last tick.
    var idle: Duration {
        .milliseconds(Int64((ContinuousClock.now - start) / .milliseconds(1)) - lastTick.load(ordering: .relaxed))
    }
}
