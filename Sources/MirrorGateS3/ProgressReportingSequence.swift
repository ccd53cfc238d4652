import NIOCore
import Synchronization

/// When an upload last moved: a body buffer taken by the HTTP client.
final class UploadProgress: Sendable {
    private let last = Mutex(ContinuousClock.now)
    func tick() { last.withLock { $0 = .now } }
    var idle: Duration { ContinuousClock.now - last.withLock { $0 } }
}

/// Passes a body through, noting each buffer the HTTP client takes.
struct ProgressReportingSequence<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let progress: UploadProgress

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), progress: progress)
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let progress: UploadProgress

        mutating func next() async throws -> ByteBuffer? {
            let next = try await base.next()
            progress.tick()
            return next
        }
    }
}
