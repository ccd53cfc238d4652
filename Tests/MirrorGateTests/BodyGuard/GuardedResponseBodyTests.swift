import AsyncHTTPClient
import MirrorGateBodyGuard
import NIOCore
import Testing

/// The watchdog of ``GuardedResponseBody`` against a body whose arrival the test controls (an
/// AsyncStream in AsyncHTTPClient's response body): a server that stops sending fails the read,
/// a consumer that stops reading does not; lengths are checked; a drip below the minimum rate
/// fails it.
@Suite struct GuardedResponseBodyTests {
    /// A response body fed by hand, and the continuation that feeds it.
    static func body() -> (HTTPClientResponse.Body, AsyncStream<ByteBuffer>.Continuation) {
        let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
        return (.stream(stream), continuation)
    }

    static func chunk(_ count: Int) -> ByteBuffer { ByteBuffer(repeating: 7, count: count) }

    /// Reads everything, returning the byte count or the failure.
    static func drain(_ body: GuardedResponseBody, pause: Duration = .zero) async -> Result<Int, any Error> {
        var total = 0
        do {
            for try await chunk in body {
                total += chunk.readableBytes
                if pause > .zero { try await Task.sleep(for: pause) }
            }
            return .success(total)
        } catch {
            return .failure(error)
        }
    }

    @Test func aServerThatStopsSendingFailsTheReadAsStalled() async throws {
        let (raw, feed) = Self.body()
        feed.yield(Self.chunk(100))  // then nothing, and the stream stays open
        let result = await Self.drain(GuardedResponseBody(raw, guards: .init(stallTimeout: .milliseconds(300))))
        guard case .failure(let error) = result, case .stalled(let limit) = error as? GuardedResponseBody.ReadFailure else {
            Issue.record("expected a stall, got \(result)")
            return
        }
        #expect(limit == .milliseconds(300))
        feed.finish()
    }

    @Test func aConsumerSlowerThanTheStallTimeoutIsBackPressureNotAStall() async throws {
        let (raw, feed) = Self.body()
        for _ in 0..<6 { feed.yield(Self.chunk(1000)) }
        feed.finish()
        // Each chunk is held for longer than the stall timeout: the pump waits on the consumer.
        let result = await Self.drain(GuardedResponseBody(raw, guards: .init(stallTimeout: .milliseconds(150))), pause: .milliseconds(300))
        #expect(try result.get() == 6000)
    }

    @Test func aBodyLongerThanItsCapOrItsLengthFails() async throws {
        let (raw, feed) = Self.body()
        feed.yield(Self.chunk(600))
        feed.yield(Self.chunk(600))
        feed.finish()
        let result = await Self.drain(GuardedResponseBody(raw, guards: .init(stallTimeout: .seconds(5), maxLength: 1000)))
        guard case .failure(let error) = result, case .tooLong(let limit) = error as? GuardedResponseBody.ReadFailure else {
            Issue.record("expected too long, got \(result)")
            return
        }
        #expect(limit == 1000)

        let (raw2, feed2) = Self.body()
        feed2.yield(Self.chunk(600))
        feed2.yield(Self.chunk(600))
        feed2.finish()
        let longer = await Self.drain(GuardedResponseBody(raw2, guards: .init(stallTimeout: .seconds(5), expectedLength: 1100)))
        guard case .failure(let error2) = longer, case .tooLong(1100) = error2 as? GuardedResponseBody.ReadFailure else {
            Issue.record("expected longer than its length, got \(longer)")
            return
        }
    }

    @Test func aBodyShorterThanItsLengthIsTruncated() async throws {
        let (raw, feed) = Self.body()
        feed.yield(Self.chunk(400))
        feed.finish()
        let result = await Self.drain(GuardedResponseBody(raw, guards: .init(stallTimeout: .seconds(5), expectedLength: 1000)))
        guard case .failure(let error) = result, case .truncated(400, 1000) = error as? GuardedResponseBody.ReadFailure else {
            Issue.record("expected truncated, got \(result)")
            return
        }
        // Exactly its length passes.
        let (raw2, feed2) = Self.body()
        feed2.yield(Self.chunk(1000))
        feed2.finish()
        #expect(try await Self.drain(GuardedResponseBody(raw2, guards: .init(stallTimeout: .seconds(5), expectedLength: 1000))).get() == 1000)
    }

    @Test func aDripBelowTheMinimumRateFailsBeforeAnyStall() async throws {
        let (raw, feed) = Self.body()
        let dripper = Task {
            // 10 bytes every 100 ms: 100 B/s, never silent for the 1 s stall timeout.
            while !Task.isCancelled {
                feed.yield(Self.chunk(10))
                try? await Task.sleep(for: .milliseconds(100))
            }
            feed.finish()
        }
        defer { dripper.cancel() }
        let guards = GuardedResponseBody.Guards(stallTimeout: .seconds(1), minRate: 10_000, rateGrace: .milliseconds(500))
        let result = await Self.drain(GuardedResponseBody(raw, guards: guards))
        guard case .failure(let error) = result, case .tooSlow(let rate, _, 10_000) = error as? GuardedResponseBody.ReadFailure else {
            Issue.record("expected too slow, got \(result)")
            return
        }
        #expect(rate < 10_000)
    }
}
