import AsyncHTTPClient
import MirrorGateBodyGuard
import NIOCore

/// An upstream's response body with the gateway's read guards (``GuardedResponseBody``: a
/// stall watchdog, a minimum rate, a size cap), failing with ``UpstreamError``: the one body
/// reader of every upstream exchange (manifests, listings and tokens collected whole, blob
/// fetches, disk-full pass-through).
///
/// Failures map as follows: a stall or a rate below the minimum is ``UpstreamError/timeout(_:)``
/// (the request fails over like one that timed out), a body over its cap is
/// ``UpstreamError/protocolViolation(_:)``, a broken connection is classified as any other
/// transport error. Single pass: iterate it once.
public struct GuardedBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    /// What bounds a body read (the cap is ``GuardedResponseBody/Guards/maxLength``).
    public typealias Guards = GuardedResponseBody.Guards

    private let body: GuardedResponseBody
    public var guards: Guards { body.guards }

    /// `body` under `guards` (any AsyncHTTPClient answer read as an upstream's: a peer
    /// replica's, too).
    public init(_ body: HTTPClientResponse.Body, guards: Guards) {
        self.body = GuardedResponseBody(body, guards: guards)
    }

    private init(_ body: GuardedResponseBody) {
        self.body = body
    }

    /// The same body under other guards (a blob fetch adds the minimum rate and the size cap).
    public func guarded(by guards: Guards) -> GuardedBody {
        GuardedBody(body.guarded(by: guards))
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(inner: body.makeAsyncIterator())
    }

    /// Yields the body's buffers; throws ``UpstreamError`` (or `CancellationError` when the
    /// consuming task was cancelled).
    public struct AsyncIterator: AsyncIteratorProtocol {
        var inner: GuardedResponseBody.AsyncIterator

        public mutating func next() async throws -> ByteBuffer? {
            do {
                return try await inner.next()
            } catch let failure as GuardedResponseBody.ReadFailure {
                throw GuardedBody.upstreamError(failure)
            }
        }
    }

    static func upstreamError(_ failure: GuardedResponseBody.ReadFailure) -> UpstreamError {
        switch failure {
        case .stalled(let timeout): .timeout("body stalled for more than \(timeout)")
        case .tooSlow(let rate, let grace, let minimum):
            .timeout("body arrived at \(rate) B/s for \(grace), below limits.min_fetch_rate (\(minimum) B/s)")
        case .tooLong(let limit): .protocolViolation("body longer than \(limit) bytes")
        case .truncated(let received, let expected): .protocolViolation("body ended after \(received) of \(expected) bytes")
        case .transport(let error): UpstreamClient.classify(error)
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

extension Duration {
    /// Seconds as a floating-point number.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
