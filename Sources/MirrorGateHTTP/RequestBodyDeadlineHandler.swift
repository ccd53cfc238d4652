import CoreMetrics
import NIOCore
import NIOHTTPTypes

/// Closes a connection whose request body is not complete within `timeout` of its head.
///
/// Hummingbird's idle timer (`limits.idle_timeout`) closes connections that trickle a request
/// head, but it restarts on every body part: a client sending one byte of a 100 MB body every
/// few seconds, to `/healthz` or while getting a 401, held its connection (and descriptor)
/// for as long as it liked, before any authentication. A read-only mirror reads no request
/// bodies (every method that carries one is refused), so a body must end within `timeout` of
/// its head or the connection is closed. Requests without a body cost nothing here: the
/// timer starts with the first body part.
final class RequestBodyDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart

    let timeout: TimeAmount
    private var headAt: NIODeadline?
    private var pending: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            cancel()
            headAt = context.eventLoop.now
        case .body:
            if pending == nil, let headAt {
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                pending = context.eventLoop.scheduleTask(deadline: headAt + timeout) {
                    Counter(label: "mirrorgate_connections_closed_total", dimensions: [("reason", "request_body_timeout")]).increment()
                    loopBound.value.close(promise: nil)
                }
            }
        case .end:
            cancel()
            headAt = nil
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancel()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        context.fireChannelInactive()
    }

    private func cancel() {
        pending?.cancel()
        pending = nil
    }
}
