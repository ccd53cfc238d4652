import CoreMetrics
import Logging
import NIOCore
import Synchronization

/// The open connections of one listener, against its cap.
public final class ConnectionGauge: Sendable {
    /// Connections allowed open at once.
    public let limit: Int
    let listener: String
    let logger: Logger
    private let state = Mutex<(open: Int, refusedSinceWarning: Int, lastWarning: ContinuousClock.Instant?)>((0, 0, nil))

    public init(limit: Int, listener: String, logger: Logger) {
        self.limit = max(1, limit)
        self.listener = listener
        self.logger = logger
    }

    /// Connections open now.
    public var open: Int { state.withLock { $0.open } }

    /// Takes a slot; false (and a warning at most every 10 s) when all are taken.
    func enter() -> Bool {
        let now = ContinuousClock.now
        let (admitted, warnCount) = state.withLock { s -> (Bool, Int?) in
            if s.open < limit {
                s.open += 1
                return (true, nil)
            }
            s.refusedSinceWarning += 1
            guard s.lastWarning.map({ now - $0 >= .seconds(10) }) ?? true else { return (false, nil) }
            s.lastWarning = now
            defer { s.refusedSinceWarning = 0 }
            return (false, s.refusedSinceWarning)
        }
        if !admitted {
            Counter(label: "mirrorgate_connections_closed_total", dimensions: [("reason", "max_connections")]).increment()
        }
        if let warnCount {
            logger.warning("connections refused: limits.max_connections reached", metadata: [
                "listener": "\(listener)", "max_connections": "\(limit)", "refused": "\(warnCount)",
            ])
        }
        return admitted
    }

    func leave() {
        state.withLock { $0.open -= 1 }
    }
}

/// Closes, at once, a connection beyond its listener's ``ConnectionGauge/limit``.
///
/// Every connection costs a descriptor, and a slow or hostile client can hold many; at the
/// process's open-file limit accept(2) fails, cached blobs cannot be opened and libdispatch
/// traps (SIGILL) when it cannot read `/proc`. Closing what is over the cap, rather than
/// leaving it in the kernel's backlog, keeps the backlog empty and tells the client at once;
/// slots free up as slow clients are cut off by `idle_timeout`, the body deadline and
/// `send_timeout`, and health probes get in again.
final class ConnectionLimitHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    let gauge: ConnectionGauge
    private var counted = false

    init(gauge: ConnectionGauge) {
        self.gauge = gauge
    }

    func channelActive(context: ChannelHandlerContext) {
        counted = gauge.enter()
        context.fireChannelActive()
        if !counted { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if counted {
            counted = false
            gauge.leave()
        }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if counted {
            counted = false
            gauge.leave()
        }
    }
}
