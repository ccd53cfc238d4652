import AsyncHTTPClient
import MirrorGateBodyGuard
import NIOCore

/// The body of a GET, streamed from the store as it is consumed, under the gateway's read
/// guards (``GuardedResponseBody``): it fails with ``S3Error/Code/timeout`` when the store sends
/// nothing for the stall timeout *while the consumer is waiting* (a slow consumer is
/// back-pressure, not a stall), and with ``S3Error/Code/invalidResponse`` when it is longer or
/// shorter than its `Content-Length`. Dropping the iterator, or cancelling the consuming task,
/// cancels the HTTP request.
///
/// Single pass: iterate it once. Errors are ``S3Error`` (or `CancellationError` when the
/// consuming task was cancelled).
public struct S3ObjectBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    private let body: GuardedResponseBody
    private let operation: String

    init(response: HTTPClientResponse.Body, expectedLength: Int64?, stallTimeout: Duration, operation: String) {
        self.body = GuardedResponseBody(
            response, guards: .init(stallTimeout: stallTimeout, expectedLength: expectedLength.map { UInt64(clamping: $0) }))
        self.operation = operation
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(inner: body.makeAsyncIterator(), operation: operation)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var inner: GuardedResponseBody.AsyncIterator
        let operation: String

        public mutating func next() async throws -> ByteBuffer? {
            do {
                return try await inner.next()
            } catch let failure as GuardedResponseBody.ReadFailure {
                throw S3ObjectBody.s3Error(failure, operation: operation)
            }
        }
    }

    static func s3Error(_ failure: GuardedResponseBody.ReadFailure, operation: String) -> S3Error {
        switch failure {
        case .stalled(let timeout): S3Error(.timeout, "\(operation): no byte of the body for \(timeout)")
        case .tooSlow(let rate, let grace, _): S3Error(.timeout, "\(operation): the body arrived at \(rate) B/s for \(grace)")
        case .tooLong(let limit): S3Error(.invalidResponse, "\(operation): body longer than its Content-Length of \(limit)")
        case .truncated(let received, let expected): S3Error(.invalidResponse, "\(operation): body ended after \(received) of \(expected) bytes")
        case .transport(let error): S3Error.transport(error, operation: operation)
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
