import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes

/// Sees every response to its last byte on the socket, and abandons clients that stop reading.
///
/// - A close asked for while bytes are still queued (Hummingbird's connection handler closes
///   right after writing a response's end when the server is stopping, or on `Connection:
///   close`) waits until those bytes are on the socket: a closed channel fails its pending
///   writes, which cut a response short on a graceful stop although the request log had
///   counted every byte as sent.
/// - When the channel stays unwritable for `timeout` (the client reads nothing, the socket
///   buffer is full), the client is gone or hostile: the connection is closed, and if a
///   response was cut by that, a warning names its request id and the bytes not delivered.
///
/// It sits right after Hummingbird's HTTP/1 codec (so it sees `HTTPResponsePart`s) and costs
/// one completion callback per write; it watches writability changes, not every byte.
final class ResponseDeliveryHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    let logger: Logger
    private var stalled: Scheduled<Void>?
    /// Writes handed to the channel and not yet on the socket.
    private var pendingWrites = 0
    /// Body bytes of the current response not yet on the socket.
    private var pendingBytes = 0
    /// The current response's request id (from its head).
    private var requestID: String?
    /// A close waiting for the pending writes.
    private var deferredClose: (mode: CloseMode, promise: EventLoopPromise<Void>?)?

    init(timeout: TimeAmount, logger: Logger) {
        self.timeout = timeout
        self.logger = logger
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        var bytes = 0
        switch part {
        case .head(let head):
            requestID = head.headerFields[.xRequestID]
        case .body(let buffer):
            bytes = buffer.readableBytes
        case .end:
            break
        }
        pendingWrites += 1
        pendingBytes += bytes
        let counted = bytes
        let tracked = promise ?? context.eventLoop.makePromise(of: Void.self)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        tracked.futureResult.whenComplete { _ in
            let (handler, context) = loopBound.value
            handler.written(bytes: counted, context: context)
        }
        context.write(data, promise: tracked)
    }

    private func written(bytes: Int, context: ChannelHandlerContext) {
        pendingWrites -= 1
        pendingBytes -= bytes
        if pendingWrites == 0, let close = deferredClose {
            deferredClose = nil
            context.close(mode: close.mode, promise: close.promise)
        }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all, pendingWrites > 0, context.channel.isActive else {
            context.close(mode: mode, promise: promise)
            return
        }
        if let earlier = deferredClose {
            // A second close (the server stopping as well): one close, both told.
            earlier.promise?.futureResult.cascade(to: promise)
            return
        }
        deferredClose = (mode, promise)
        context.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stalled?.cancel()
            stalled = nil
        } else if stalled == nil {
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            stalled = context.eventLoop.scheduleTask(in: timeout) {
                let (handler, context) = loopBound.value
                handler.stalled = nil
                if !context.channel.isWritable { handler.abandon(context: context) }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    /// Closes a connection whose client stopped reading, saying which response it cut short.
    private func abandon(context: ChannelHandlerContext) {
        if pendingBytes > 0 || pendingWrites > 0 {
            logger.warning("client stopped reading: connection closed", metadata: [
                "request_id": "\(requestID ?? "-")", "undelivered_bytes": "\(max(pendingBytes, 0))",
                "aborted": "no byte read for \(timeout.nanoseconds / 1_000_000_000)s",
            ])
        }
        let deferred = deferredClose
        deferredClose = nil
        context.close(mode: .all, promise: deferred?.promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stalled?.cancel()
        stalled = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        stalled?.cancel()
        stalled = nil
        if let close = deferredClose {
            deferredClose = nil
            close.promise?.succeed()
        }
        context.fireChannelInactive()
    }
}
