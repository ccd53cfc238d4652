import AsyncHTTPClient
import NIOCore

/// An AsyncHTTPClient response body read under a watchdog: the one body reader of every
/// outbound HTTP client in the gateway (upstream registries, the S3 store).
///
/// AsyncHTTPClient's deadline ends with the response head, and a body read can only be
/// interrupted by cancelling the task that reads it. So iterating starts a pump task that reads
/// the body and hands buffers on through a back-pressured NIO producer (a few buffers ahead of
/// the consumer). A watchdog beside the pump fails the body
/// - with ``ReadFailure/stalled(_:)`` when the server sends nothing for `stallTimeout` *while the
///   pump is waiting on it*: time the consumer takes (a slow client, a disk write) is
///   back-pressure, not a stall;
/// - with ``ReadFailure/tooSlow(bytesPerSecond:over:minimum:)`` when, with a `minRate`, the bytes
///   that arrived over a whole `rateGrace` came slower than that (a drip-feeding server that
///   stays just under the stall timeout).
///
/// A body longer than `maxLength` fails with ``ReadFailure/tooLong(limit:)``; one that ends short of
/// `expectedLength` with ``ReadFailure/truncated(received:expected:)``. Dropping the iterator, or
/// cancelling the consuming task, cancels the pump and with it the request. Single pass:
/// iterate it once. The clients wrap it to turn ``ReadFailure`` into their own error type.
public struct GuardedResponseBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    /// What bounds a body read.
    public struct Guards: Sendable {
        public var stallTimeout: Duration
        /// Bytes per second over ``rateGrace`` below which the body fails (0: no minimum).
        public var minRate: UInt64
        public var rateGrace: Duration
        /// The most bytes accepted.
        public var maxLength: UInt64
        /// The length the body must have (its `Content-Length`), when the caller checks it.
        public var expectedLength: UInt64?

        public init(
            stallTimeout: Duration, minRate: UInt64 = 0, rateGrace: Duration = .seconds(30), maxLength: UInt64 = .max,
            expectedLength: UInt64? = nil
        ) {
            self.stallTimeout = stallTimeout
            self.minRate = minRate
            self.rateGrace = rateGrace
            self.maxLength = maxLength
            self.expectedLength = expectedLength
        }
    }

    /// Why a guarded body failed.
    public enum ReadFailure: Error {
        /// Nothing arrived for this long while the consumer waited.
        case stalled(Duration)
        /// The body arrived at `bytesPerSecond` over `over`, below `minimum`.
        case tooSlow(bytesPerSecond: Int, over: Duration, minimum: UInt64)
        /// More bytes than `limit` (``Guards/maxLength``, or ``Guards/expectedLength``).
        case tooLong(limit: UInt64)
        /// The body ended after `received` bytes of the `expected`.
        case truncated(received: UInt64, expected: UInt64)
        /// The connection failed (AsyncHTTPClient's or NIO's error).
        case transport(any Error)
    }

    typealias Producer = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, BodyPump
    >

    private let body: HTTPClientResponse.Body
    public let guards: Guards

    public init(_ body: HTTPClientResponse.Body, guards: Guards) {
        self.body = body
        self.guards = guards
    }

    /// The same body under other guards.
    public func guarded(by guards: Guards) -> GuardedResponseBody {
        GuardedResponseBody(body, guards: guards)
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

    /// Yields the body's buffers; throws ``Failure`` (or `CancellationError` when the consuming
    /// task was cancelled).
    public struct AsyncIterator: AsyncIteratorProtocol {
        var inner: Producer.AsyncIterator

        public mutating func next() async throws -> ByteBuffer? {
            try await inner.next()
        }
    }
}

extension Duration {
    /// Seconds as a floating-point number.
    var secondsValue: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
