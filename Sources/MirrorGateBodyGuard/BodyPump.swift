import AsyncHTTPClient
import NIOCore
import Synchronization

/// The producer side of a ``GuardedResponseBody``: demand from the consumer, and the pump task
/// to cancel when the consumer goes away.
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
        case failed(GuardedResponseBody.ReadFailure)
        case abandoned
    }

    /// How long the pump has been waiting on the server (the consumer's time never counts),
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
        /// Time spent waiting on the server so far, and the bytes it sent meanwhile.
        var progress: (waited: Duration, bytes: UInt64) {
            state.withLock { s in (s.waited + (s.since.map { ContinuousClock.now - $0 } ?? .zero), s.bytes) }
        }
    }

    static func run(
        _ body: HTTPClientResponse.Body, into source: GuardedResponseBody.Producer.Source, control: BodyPump,
        guards: GuardedResponseBody.Guards
    ) async {
        let watch = Watch()
        let limit = min(guards.maxLength, guards.expectedLength ?? .max)
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
                        if received > limit { return .failed(.tooLong(limit: limit)) }
                        if source.yield(chunk) == .stopProducing {
                            guard await control.waitForDemand() else { return .abandoned }
                        }
                    }
                    if let expected = guards.expectedLength, received != expected {
                        return .failed(.truncated(received: received, expected: expected))
                    }
                    return .finished
                } catch {
                    return Task.isCancelled ? .abandoned : .failed(.transport(error))
                }
            }
            group.addTask {
                let tick = min(guards.stallTimeout / 4, .seconds(1))
                // The rate is bytes over time spent waiting on the server, so a slow consumer
                // (back-pressure) never makes a fast server look slow.
                var window = (waited: Duration.zero, bytes: UInt64(0))
                while !Task.isCancelled {
                    try? await Task.sleep(for: tick)
                    if watch.waiting(longerThan: guards.stallTimeout) {
                        return .failed(.stalled(guards.stallTimeout))
                    }
                    let now = watch.progress
                    if guards.minRate > 0, now.waited - window.waited >= guards.rateGrace {
                        let rate = Double(now.bytes - window.bytes) / (now.waited - window.waited).secondsValue
                        if rate < Double(guards.minRate) {
                            return .failed(.tooSlow(bytesPerSecond: Int(rate), over: guards.rateGrace, minimum: guards.minRate))
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
