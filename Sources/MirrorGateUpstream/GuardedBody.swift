import AsyncHTTPClient
import NIOCore
import Synchronization

/// An upstream's response body with the gateway's read guards: the one watchdog every upstream
/// body reader uses (manifests, listings and tokens collected whole, blob fetches, disk-full
/// pass-through).
///
/// AsyncHTTPClient's deadline ends with the response head, and a body read can only be
/// interrupted by cancelling the task that reads it. So iterating starts a pump task that
/// reads the upstream's body and hands buffers on through a back-pressured NIO producer (a few
/// buffers ahead of the consumer). A watchdog beside the pump fails the body with
/// ``UpstreamError/timeout(_:)``
/// - when the upstream sends nothing for `stallTimeout` *while the pump is waiting on it* —
///   time the consumer takes (a slow client, a disk write) is back-pressure, not a stall;
/// - when, with a `minRate`, the bytes that arrived over a whole `rateGrace` came slower than
///   that (a drip-feeding upstream that stays just under the stall timeout).
///
/// A body longer than `maxLength` fails with ``UpstreamError/protocolViolation(_:)``. Dropping
/// the iterator, or cancelling the consuming task, cancels the pump and with it the request.
/// Single pass: iterate it once.
public struct GuardedBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    /// What bounds a body read.
    public struct Guards: Sendable {
        public var stallTimeout: Duration
        /// Bytes per second over ``rateGrace`` below which the body fails (0: no minimum).
        public var minRate: UInt64
        public var rateGrace: Duration
        /// The most bytes accepted.
        public var maxLength: UInt64

        public init(stallTimeout: Duration, minRate: UInt64 = 0, rateGrace: Duration = .seconds(30), maxLength: UInt64 = .max) {
            self.stallTimeout = stallTimeout
            self.minRate = minRate
            self.rateGrace = rateGrace
            self.maxLength = maxLength
        }
    }

    typealias Producer = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, BodyPump
    >

    private let body: HTTPClientResponse.Body
    public let guards: Guards

    /// `body` under `guards` (the peer client reads other replicas' streams with them too).
    public init(_ body: HTTPClientResponse.Body, guards: Guards) {
        self.body = body
        self.guards = guards
    }

    /// The same body under other guards (a blob fetch adds the minimum rate and the size cap).
    public func guarded(by guards: Guards) -> GuardedBody {
        GuardedBody(body, guards: guards)
    }

    public func makeAsyncIterator() -> AsyncIterator {
        let pump = BodyPump()
        let produced = Producer.makeSequence(
            backPressureStrategy: .init(lowWatermark: 1, highWatermark: 4), finishOnDeinit: true, delegate: pump)
        let task = Task { [body, guards] in
            await BodyPump.run(body, into: produced.source, control: pump, guards: guards)
        }
        pump.attach(task)
        return AsyncIterator(inner: produced.sequence.makeAsyncIterator())
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var inner: Producer.AsyncIterator

        public mutating func next() async throws -> ByteBuffer? {
            try await inner.next()
        }
    }

    /// Reads the whole (small) body, at most `limit` bytes.
    public func collect(upTo limit: Int) async throws(UpstreamError) -> ByteBuffer {
        var buffer = ByteBuffer()
        do {
            for try await var chunk in self {
                guard buffer.readableBytes + chunk.readableBytes <= limit else {
                    throw UpstreamError.protocolViolation("body larger than \(limit) bytes")
                }
                buffer.writeBuffer(&chunk)
            }
        } catch {
            throw UpstreamClient.classify(error)
        }
        return buffer
    }
}

/// The producer side of a ``GuardedBody``: demand from the consumer, and the pump task to
/// cancel when the consumer goes away.
final class BodyPump: NIOAsyncSequenceProducerDelegate, Sendable {
    private struct State {
        var demandPending = false
        var waiter: CheckedContinuation<Void, Never>?
        var terminated = false
        var task: Task<Void, Never>?
    }

    private let state = Mutex(State())

    func produceMore() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.demandPending = true
            return nil
        }
        waiter?.resume()
    }

    func didTerminate() {
        let (waiter, task) = state.withLock { state in
            state.terminated = true
            defer { state.waiter = nil }
            return (state.waiter, state.task)
        }
        waiter?.resume()
        task?.cancel()
    }

    func attach(_ task: Task<Void, Never>) {
        let terminated = state.withLock { state in
            if !state.terminated { state.task = task }
            return state.terminated
        }
        if terminated { task.cancel() }
    }

    /// Waits until the consumer wants more; `false` when it is gone instead.
    private func waitForDemand() async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.demandPending {
                        state.demandPending = false
                        return true
                    }
                    if state.terminated || Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
        return !Task.isCancelled && !state.withLock { $0.terminated }
    }

    private enum End: Sendable {
        case finished
        case failed(UpstreamError)
        case abandoned
    }

    /// How long the pump has been waiting on the upstream (the consumer's time never counts),
    /// in the current wait and in all, and the bytes that arrived.
    private final class Watch: Sendable {
        private let state = Mutex<(since: ContinuousClock.Instant?, waited: Duration, bytes: UInt64)>((nil, .zero, 0))
        func begin() { state.withLock { $0.since = .now } }
        func end(bytes: Int) {
            state.withLock { s in
                if let since = s.since { s.waited += ContinuousClock.now - since }
                s.since = nil
                s.bytes += UInt64(bytes)
            }
        }
        func waiting(longerThan limit: Duration) -> Bool {
            state.withLock { $0.since.map { ContinuousClock.now - $0 > limit } ?? false }
        }
        /// Time spent waiting on the upstream so far, and the bytes it sent meanwhile.
        var progress: (waited: Duration, bytes: UInt64) {
            state.withLock { s in (s.waited + (s.since.map { ContinuousClock.now - $0 } ?? .zero), s.bytes) }
        }
    }

    static func run(_ body: HTTPClientResponse.Body, into source: GuardedBody.Producer.Source, control: BodyPump, guards: GuardedBody.Guards) async {
        let watch = Watch()
        let end = await withTaskGroup(of: End.self) { group in
            group.addTask {
                do {
                    var received: UInt64 = 0
                    var iterator = body.makeAsyncIterator()
                    while true {
                        watch.begin()
                        let next = try await iterator.next()
                        watch.end(bytes: next?.readableBytes ?? 0)
                        guard let chunk = next else { break }
                        received += UInt64(chunk.readableBytes)
                        if received > guards.maxLength {
                            return .failed(.protocolViolation("body longer than \(guards.maxLength) bytes"))
                        }
                        if source.yield(chunk) == .stopProducing {
                            guard await control.waitForDemand() else { return .abandoned }
                        }
                    }
                    return .finished
                } catch {
                    return Task.isCancelled ? .abandoned : .failed(UpstreamClient.classify(error))
                }
            }
            group.addTask {
                let tick = min(guards.stallTimeout / 4, .seconds(1))
                // The rate is bytes over time spent waiting on the upstream, so a slow consumer
                // (back-pressure) never makes a fast upstream look slow.
                var window = (waited: Duration.zero, bytes: UInt64(0))
                while !Task.isCancelled {
                    try? await Task.sleep(for: tick)
                    if watch.waiting(longerThan: guards.stallTimeout) {
                        return .failed(.timeout("body stalled for more than \(guards.stallTimeout)"))
                    }
                    let now = watch.progress
                    if guards.minRate > 0, now.waited - window.waited >= guards.rateGrace {
                        let rate = Double(now.bytes - window.bytes) / (now.waited - window.waited).seconds
                        if rate < Double(guards.minRate) {
                            return .failed(.timeout("body arrived at \(Int(rate)) B/s for \(guards.rateGrace), below limits.min_fetch_rate (\(guards.minRate) B/s)"))
                        }
                        window = now
                    }
                }
                return .abandoned
            }
            let first = await group.next() ?? .abandoned
            group.cancelAll()
            return first
        }
        switch end {
        case .finished, .abandoned: source.finish()
        case .failed(let error): source.finish(error)
        }
    }
}

extension Duration {
    /// Seconds as a floating-point number.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
