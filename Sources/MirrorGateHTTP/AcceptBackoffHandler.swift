import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Pauses accepting while accept(2) fails for lack of descriptors or memory.
///
/// NIO reports EMFILE, ENFILE, ENOBUFS and ENOMEM from accept as errors on the listening
/// channel and keeps it open, but the refused connection stays in the kernel's backlog, so the
/// socket stays readable and NIO tries again at once: the event loop spun (2 s of CPU in 5 s
/// with 100 connections over a 64-descriptor limit) instead of serving the connections it
/// had. First in the listener's pipeline, this handler swallows those errors and withholds
/// reads for 10 ms, doubling to 1 s while the failures last; the backlog waits in the kernel
/// until descriptors are free. Other errors pass on.
final class AcceptBackoffHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias InboundOut = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    static let firstDelay = TimeAmount.milliseconds(10)
    static let maxDelay = TimeAmount.seconds(1)

    let logger: Logger
    private var delay: TimeAmount?
    private var resume: Scheduled<Void>?
    private var readWanted = false
    private var failures = 0

    init(logger: Logger) {
        self.logger = logger
    }

    /// Whether `error` is accept(2) running out of descriptors or memory.
    static func isResourceExhaustion(_ error: any Error) -> Bool {
        guard let error = error as? IOError else { return false }
        return [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard Self.isResourceExhaustion(error) else {
            context.fireErrorCaught(error)
            return
        }
        failures += 1
        guard resume == nil else { return }
        let next = delay.map { min($0 * 2, Self.maxDelay) } ?? Self.firstDelay
        if delay == nil {
            logger.warning("accept failed: pausing new connections until descriptors are free", metadata: [
                "error": "\(error)", "local_address": "\(context.channel.localAddress?.description ?? "?")",
            ])
        }
        delay = next
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        resume = context.eventLoop.scheduleTask(in: next) {
            let (handler, context) = loopBound.value
            handler.resume = nil
            if handler.readWanted {
                handler.readWanted = false
                context.read()
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A connection was accepted: descriptors are back.
        if delay != nil, resume == nil {
            logger.notice("accepting connections again", metadata: ["failed_accepts": "\(failures)"])
            delay = nil
            failures = 0
        }
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        if resume != nil {
            readWanted = true
        } else {
            context.read()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
    }
}
