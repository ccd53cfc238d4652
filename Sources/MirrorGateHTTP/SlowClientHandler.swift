import NIOCore

/// Closes a connection whose client stopped reading a response.
///
/// Responses stream with backpressure: when the client reads nothing, the socket buffer fills,
/// the channel turns unwritable and the body's writer waits, holding a cache lease and file
/// descriptor. If the channel stays unwritable for `timeout`, the client is gone or hostile,
/// and the connection is closed (the body's writer then fails and the request is logged as
/// aborted). Costs nothing per chunk: it only watches writability changes.
final class SlowClientHandler: ChannelInboundHandler, RemovableChannelHandler {
    /// Passes every part through untouched (writability is all it watches).
    typealias InboundIn = NIOAny

    let timeout: TimeAmount
    private var pending: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            pending?.cancel()
            pending = nil
        } else if pending == nil {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            pending = context.eventLoop.scheduleTask(in: timeout) {
                let context = loopBound.value
                if !context.channel.isWritable { context.close(promise: nil) }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        pending?.cancel()
        pending = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        pending?.cancel()
        pending = nil
        context.fireChannelInactive()
    }
}
