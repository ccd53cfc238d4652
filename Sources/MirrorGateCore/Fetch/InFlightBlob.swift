import MirrorGateStorage
import NIOCore
import RegistryModel
import Synchronization

/// A blob being fetched from upstream into a local ``Spool``, shared by every client that
/// asks for it meanwhile. Readers follow the growing spool at their own pace; the bytes of the
/// newest chunk stay hidden until the next one lands or the digest verifies, so no client ever
/// receives a complete blob that fails verification.
public final class InFlightBlob: Sendable {
    public let digest: Digest

    enum Outcome: Sendable {
        case verified
        case failed(RegistryError)
    }

    struct State: Sendable {
        var version: UInt64 = 0
        /// Bumped when the fetch restarts from byte 0 (after a digest mismatch).
        var generation: Int = 0
        var spool: Spool?
        /// The store, when the blob turned out to be stored already (read from there instead).
        var store: (any BlobStore)?
        var size: UInt64?
        var headKnown = false
        /// Bytes readers may take.
        var visible: UInt64 = 0
        var outcome: Outcome?
        /// The upstream the verified bytes came from, and those passed over before it.
        var source: String?
        var skipped: String?
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())
    private let readerCount = Atomic<Int>(0)
    private let notCacheable = Atomic<Bool>(false)
    /// Largest chunk handed to a reader at once.
    static let readChunk = 256 << 10

    init(digest: Digest) {
        self.digest = digest
    }

    // MARK: Writer side (the fetch)

    func begin(spool: Spool, restart: Bool) {
        update { s in
            if restart { s.generation += 1; s.visible = 0; s.size = nil; s.headKnown = false }
            s.spool = spool
        }
    }

    /// The blob does not fit the cache's free space: its clients are passed through.
    func markTooLargeToCache() {
        notCacheable.store(true, ordering: .relaxed)
    }

    /// Whether an upstream had the blob but it did not fit the cache (serve it as a pass-through).
    public var didNotFit: Bool { notCacheable.load(ordering: .relaxed) }

    func publishHead(size: UInt64?) {
        update { s in
            if !s.headKnown { s.size = size; s.headKnown = true }
        }
    }

    func publishVisible(_ bytes: UInt64) {
        update { s in s.visible = max(s.visible, bytes) }
    }

    /// The blob was committed by the fetch before this one: readers read the store.
    func finishStored(in store: any BlobStore, size: UInt64) {
        update { s in
            s.store = store
            s.size = size
            s.visible = size
            s.headKnown = true
            s.outcome = .verified
        }
    }

    func finish(_ outcome: Outcome, size: UInt64?, source: String? = nil, skipped: String? = nil) {
        update { s in
            if case .verified = outcome, let size { s.size = size; s.visible = size; s.headKnown = true }
            s.outcome = outcome
            s.source = source
            s.skipped = skipped
        }
    }

    private func update(_ body: (inout State) -> Void) {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            body(&s)
            s.version &+= 1
            let w = Array(s.waiters.values)
            s.waiters.removeAll()
            return w
        }
        for w in waiters { w.resume() }
    }

    /// Waits until the state moves past `version`, or the waiting task is cancelled (a client
    /// that went away while its fetch waited for a slot must not stay suspended).
    private func waitForChange(after version: UInt64) async {
        let ticket = state.withLock { s -> UInt64 in
            defer { s.nextWaiter &+= 1 }
            return s.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.version != version || Task.isCancelled { return true }
                    s.waiters[ticket] = c
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: ticket) }?.resume()
        }
    }

    // MARK: Reader side

    /// The upstream the verified bytes came from (set when the fetch succeeds).
    public var source: String? { state.withLock { $0.source } }

    /// Upstreams the fetch skipped or that failed before `source` served it, with reasons.
    public var skipped: String? { state.withLock { $0.skipped } }

    /// The size if known and the bytes readers may take (a lease heartbeat's progress).
    var progress: (size: UInt64?, visible: UInt64) { state.withLock { ($0.size, $0.visible) } }

    /// Clients reading this blob now.
    public var readers: Int { readerCount.load(ordering: .relaxed) }

    /// Waits until the upstream answered with a head, and returns the blob's size if known.
    public func size() async throws(RegistryError) -> UInt64? {
        while true {
            let (version, headKnown, size, outcome) = state.withLock { ($0.version, $0.headKnown, $0.size, $0.outcome) }
            if case .failed(let error) = outcome { throw error }
            if headKnown || outcome != nil { return size }
            if Task.isCancelled { throw RegistryError(.blobUnknown, status: 503, "the client went away while the fetch waited") }
            await waitForChange(after: version)
        }
    }

    /// Streams bytes `range` (or from `start` to the end when `range` is nil) to `sink` as they
    /// become available. Throws when the fetch fails or restarts underneath the reader; the
    /// response must then be aborted.
    public func read(from start: UInt64, through last: UInt64?, sink: (ByteBuffer) async throws -> Void) async throws {
        readerCount.add(1, ordering: .relaxed)
        defer { readerCount.subtract(1, ordering: .relaxed) }
        var position = start
        var generation: Int?
        while true {
            let snap = state.withLock { s in
                (s.version, s.generation, s.spool, s.visible, s.size, s.outcome, s.store)
            }
            let (version, gen, spool, visible, size, outcome, store) = snap
            if let store, let size {
                guard position < size else { return }
                let end = min(last ?? (size - 1), size - 1)
                guard let reader = try await store.reader(for: digest, range: position...end) else {
                    throw RegistryError(.blobUnknown, status: 503, "blob \(digest) was evicted while it was being served")
                }
                try await reader.stream(to: sink)
                return
            }
            if let generation, generation != gen {
                throw RegistryError(.blobUnknown, status: 502, "upstream content for \(digest) changed during the transfer")
            }
            generation = gen
            if case .failed(let error) = outcome { throw error }
            let end: UInt64? = last.map { $0 + 1 } ?? (outcome != nil ? size : nil)
            if let end, position >= end { return }
            let available = min(visible, end ?? visible)
            if position < available, let spool {
                let count = Int(min(available - position, UInt64(Self.readChunk)))
                let buffer = try await spool.read(at: position, count: count)
                if buffer.readableBytes == 0 {
                    throw RegistryError(.blobUnknown, status: 500, "short read of in-flight blob \(digest)")
                }
                position += UInt64(buffer.readableBytes)
                try await sink(buffer)
                continue
            }
            if outcome != nil, size == nil { return }
            try Task.checkCancellation()
            await waitForChange(after: version)
        }
    }
}
