import AsyncHTTPClient
import NIOCore
import Synchronization

/// The body of a GET, streamed from the store as it is consumed, with a read-stall timeout.
///
/// AsyncHTTPClient's deadline ends with the response head, and a body read can only be
/// interrupted by cancelling the task that reads it. So the first ``makeAsyncIterator()`` starts
/// a pump task that reads the response and hands buffers over through a back-pressured NIO
/// producer (at most a few buffers ahead of the consumer). A watchdog beside the pump fails the
/// body with ``S3Error/Code/timeout`` when the store sends nothing for the timeout *while the
/// consumer is waiting*: a slow consumer is back-pressure, not a stall. Dropping the iterator, or
/// cancelling the consuming task, cancels the pump and with it the HTTP request.
///
/// Single pass: iterate it once. Errors are ``S3Error`` (or `CancellationError` when the
/// consuming task was cancelled).
public struct S3ObjectBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    typealias Producer = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, BodyPump
    >

    private let response: HTTPClientResponse.Body
    private let expectedLength: Int64?
    private let stallTimeout: Duration
    private let operation: String

    init(response: HTTPClientResponse.Body, expectedLength: Int64?, stallTimeout: Duration, operation: String) {
        self.response = response
        self.expectedLength = expectedLength
        self.stallTimeout = stallTimeout
        self.operation = operation
    }

    public func makeAsyncIterator() -> AsyncIterator {
        let pump = BodyPump()
        let produced = Producer.makeSequence(
            backPressureStrategy: .init(lowWatermark: 1, highWatermark: 4), finishOnDeinit: true, delegate: pump)
        let task = Task { [response, expectedLength, stallTimeout, operation] in
            await BodyPump.run(
                response: response, into: produced.source, control: pump, expectedLength: expectedLength,
                stallTimeout: stallTimeout, operation: operation)
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

    /// Collects a whole small body (an XML answer or error document), at most `limit` bytes.
    func collect(upTo limit: Int) async throws(S3Error) -> ByteBuffer {
        var buffer = ByteBuffer()
        do {
            for try await var chunk in self {
                guard buffer.readableBytes + chunk.readableBytes <= limit else {
                    throw S3Error(.invalidResponse, "\(operation): answer larger than \(limit) bytes")
                }
                buffer.writeBuffer(&chunk)
            }
        } catch let error as S3Error {
            throw error
        } catch {
            throw S3Error.transport(error, operation: operation)
        }
        return buffer
    }
}

/// The producer side of an ``S3ObjectBody``: demand signals from the consumer, and the pump task
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
        case failed(S3Error)
        case abandoned
    }

    /// Since when the pump has been waiting for the store (nil while it is not).
    private final class StallWatch: Sendable {
        private let since = Mutex<ContinuousClock.Instant?>(nil)
        func begin() { since.withLock { $0 = .now } }
        func end() { since.withLock { $0 = nil } }
        func waiting(longerThan limit: Duration) -> Bool {
            since.withLock { $0.map { ContinuousClock.now - $0 > limit } ?? false }
        }
    }

    static func run(
        response: HTTPClientResponse.Body, into source: S3ObjectBody.Producer.Source, control: BodyPump,
        expectedLength: Int64?, stallTimeout: Duration, operation: String
    ) async {
        let watch = StallWatch()
        let end = await withTaskGroup(of: End.self) { group in
            group.addTask {
                do {
                    var received: Int64 = 0
                    var iterator = response.makeAsyncIterator()
                    while true {
                        watch.begin()
                        let next = try await iterator.next()
                        watch.end()
                        guard let chunk = next else { break }
                        received += Int64(chunk.readableBytes)
                        if let expectedLength, received > expectedLength {
                            return .failed(S3Error(.invalidResponse, "\(operation): body longer than its Content-Length of \(expectedLength)"))
                        }
                        if source.yield(chunk) == .stopProducing {
                            guard await control.waitForDemand() else { return .abandoned }
                        }
                    }
                    if let expectedLength, received != expectedLength {
                        return .failed(S3Error(.invalidResponse, "\(operation): body ended after \(received) of \(expectedLength) bytes"))
                    }
                    return .finished
                } catch {
                    return Task.isCancelled ? .abandoned : .failed(S3Error.transport(error, operation: operation))
                }
            }
            group.addTask {
                let tick = min(stallTimeout / 4, .seconds(1))
                while !Task.isCancelled {
                    try? await Task.sleep(for: tick)
                    if watch.waiting(longerThan: stallTimeout) {
                        return .failed(S3Error(.timeout, "\(operation): no byte of the body for \(stallTimeout)"))
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
