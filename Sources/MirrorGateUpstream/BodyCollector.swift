import AsyncHTTPClient
import NIOCore
import Synchronization

/// Reads a whole small upstream body (a manifest, a tag list, a token, a redirect's or an
/// error's) and gives up when no byte arrives for `stallTimeout`.
///
/// AsyncHTTPClient's request deadline ends with the response head, so without this a body
/// that stops coming would hold its request — and every client waiting on it — forever.
/// Giving up cancels the read, which closes the connection.
enum BodyCollector {
    /// The body, at most `limit` bytes.
    ///
    /// - Throws: ``UpstreamError/timeout(_:)`` after `stallTimeout` without a byte,
    ///   ``UpstreamError/protocolViolation(_:)`` past `limit`, otherwise the classified
    ///   transport error.
    static func collect(_ body: HTTPClientResponse.Body, upTo limit: Int, stallTimeout: TimeAmount) async throws(UpstreamError) -> ByteBuffer {
        let clock = ProgressClock()
        let stall = Duration.nanoseconds(max(stallTimeout.nanoseconds, 1_000_000))
        do {
            return try await withThrowingTaskGroup(of: ByteBuffer.self) { group in
                group.addTask {
                    var buffer = ByteBuffer()
                    for try await chunk in body {
                        guard buffer.readableBytes + chunk.readableBytes <= limit else {
                            throw UpstreamError.protocolViolation("body larger than \(limit) bytes")
                        }
                        var chunk = chunk
                        buffer.writeBuffer(&chunk)
                        clock.tick()
                    }
                    return buffer
                }
                group.addTask {
                    while true {
                        try await Task.sleep(for: stall / 4)
                        if clock.idle >= stall { throw UpstreamError.timeout("no byte of the body for \(stall)") }
                    }
                }
                defer { group.cancelAll() }
                guard let buffer = try await group.next() else { throw UpstreamError.timeout("body ended without an answer") }
                return buffer
            }
        } catch let error as UpstreamError {
            throw error
        } catch {
            throw UpstreamClient.classify(error)
        }
    }

    /// When a byte last arrived.
    private final class ProgressClock: Sendable {
        private let last = Mutex(ContinuousClock.now)
        func tick() { last.withLock { $0 = .now } }
        var idle: Duration { ContinuousClock.now - last.withLock { $0 } }
    }
}
