import MirrorGateStorage
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Sends a cached blob's bytes with `sendfile(2)`: the kernel moves them from the page cache to
/// the socket, and the gateway never copies them into user space.
///
/// Why a handler here: Hummingbird 2's `ResponseBodyWriter` takes only `ByteBuffer`s, and its
/// HTTP-types codec (`HTTP1ToHTTPServerCodec`) carries only `ByteBuffer` bodies, but NIO's
/// HTTP/1 encoder below it takes `IOData`, which includes a `FileRegion`. So this handler sits
/// just after the encoder (installed by ``FileRegionInstaller``, as Hummingbird's extra handlers
/// all come after its codec) and writes the region there, while the head and the end of the
/// response still go the usual way through Hummingbird's writer: the responder writes nothing
/// but the head before handing the region over (``FileRegionSender``), and the end after the
/// region's last byte is on the socket, so the three stay in order. Nothing else in the
/// pipeline changes, and a response that is not a cached file never meets this handler.
///
/// The region goes out in parts of ``partLength``, the next one written only once the last is
/// on the socket and from a fresh event-loop task: NIO announces that a channel is writable
/// again only after the write that emptied it returns, so writing the next part from inside its
/// completion would keep the channel unwritable for the whole blob, and
/// ``ResponseDeliveryHandler`` (which abandons a client whose channel stays unwritable for
/// `send_timeout`) would cut a healthy download that takes longer than that. With parts, a
/// reader that keeps reading makes the channel writable once per part; one that stops does not,
/// and is cut as on the buffered path. The kernel's socket buffer still holds the previous part
/// while the next is queued, so the hand-over costs no throughput.
///
/// Not installed on TLS listeners: the TLS handler encrypts in user space and needs the bytes.
final class FileRegionHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Bytes per part: a client has to read this much within `send_timeout` (the buffered path
    /// asks for 256 KiB), and a part costs one event-loop task and one completion.
    static let partLength: UInt64 = 1 << 20

    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Writes `region` as the body of the response whose head was just written; `sent` is told
    /// 0 at once (the body goes out this way), then each part's bytes once they are on the
    /// socket. nil when the connection is gone. Call on the event loop.
    func send(_ region: BlobFileRegion, sent: @escaping @Sendable (Int) -> Void) -> EventLoopFuture<Void>? {
        guard let context, context.channel.isActive else { return nil }
        let done = context.eventLoop.makePromise(of: Void.self)
        sent(0)
        if region.length == 0 {
            done.succeed()
        } else {
            sendPart(from: 0, of: region, context: context, done: done, sent: sent)
        }
        return done.futureResult
    }

    private func sendPart(from start: UInt64, of region: BlobFileRegion, context: ChannelHandlerContext, done: EventLoopPromise<Void>, sent: @escaping @Sendable (Int) -> Void) {
        let length = min(Self.partLength, region.length - start)
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.body(.fileRegion(region.region(from: start, length: length)))), promise: written)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        written.futureResult.whenComplete { result in
            switch result {
            case .failure(let error):
                done.fail(error)
            case .success:
                sent(Int(length))
                let next = start + length
                guard next < region.length else { return done.succeed() }
                loopBound.value.1.eventLoop.execute {
                    let (handler, context) = loopBound.value
                    handler.sendPart(from: next, of: region, context: context, done: done, sent: sent)
                }
            }
        }
    }
}

/// Installs ``FileRegionHandler`` at the HTTP/1 level of each plain-HTTP connection, then does
/// nothing but pass requests on.
final class FileRegionInstaller: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart

    func handlerAdded(context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        do {
            let encoder = try pipeline.handler(type: HTTPResponseEncoder.self)
            try pipeline.addHandler(FileRegionHandler(), position: .after(encoder))
        } catch {
            // No HTTP/1 encoder in this pipeline: blobs are streamed from buffers.
        }
    }
}

/// The way from a response body (async) to its connection's ``FileRegionHandler``.
public struct FileRegionSender: Sendable {
    let channel: any Channel

    /// Sends `region` as the body of the response being written, returning once its last byte
    /// is on the socket; false (nothing sent) when this connection cannot send files (TLS), and
    /// the caller streams the bytes instead. `sent` is told the bytes of each part on the socket.
    func send(_ region: BlobFileRegion, sent: @escaping @Sendable (Int) -> Void) async throws -> Bool {
        let channel = channel
        return try await channel.eventLoop.flatSubmit { () -> EventLoopFuture<Bool> in
            guard let handler = try? channel.pipeline.syncOperations.handler(type: FileRegionHandler.self),
                  let sending = handler.send(region, sent: sent)
            else { return channel.eventLoop.makeSucceededFuture(false) }
            return sending.map { true }
        }.get()
    }
}

/// A request context that knows its connection, so a response body can send a file region.
public protocol FileSendingRequestContext {
    var fileSender: FileRegionSender { get }
}
