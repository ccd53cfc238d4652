import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import MirrorGateConfig
import NIOCore

/// How the listener's channels are built from `limits:` and `tls:`.
public enum ServerSetup {
    /// HTTP/1.1 with the request-head size limit, the idle timeout (which also bounds how long a
    /// client may take to send a request head), the request-body deadline (the same timeout,
    /// counted from the head), the connection cap of `connections` and the delivery guard
    /// (responses reach their last byte before a close; readers that stop are abandoned after
    /// `send_timeout`); cached blobs sent with `sendfile` unless `tls` is given (then wrapped
    /// in TLS, which needs the bytes in user space). The handler list is an
    /// autoclosure: each connection gets its own handlers.
    public static func serverBuilder(limits: LimitsConfig, tls: ReloadableTLS?, connections: ConnectionGauge, logger: Logger) throws -> HTTPServerBuilder {
        let sendTimeout = TimeAmount.nanoseconds(Int64(clamping: limits.sendTimeout.components.seconds) * 1_000_000_000)
        let idleTimeout = TimeAmount.nanoseconds(Int64(clamping: limits.idleTimeout.components.seconds) * 1_000_000_000)
        let sendsFiles = tls == nil
        let http = HTTPServerBuilder.http1(configuration: .init(
            additionalChannelHandlers: [
                ConnectionLimitHandler(gauge: connections),
                RequestBodyDeadlineHandler(timeout: idleTimeout),
                ResponseDeliveryHandler(timeout: sendTimeout, logger: logger),
                ReasonPhraseInstaller(),
            ] + (sendsFiles ? [FileRegionInstaller()] : []),
            idleTimeout: idleTimeout,
            httpDecoderConfiguration: .init(
                maxHeaderFieldSize: limits.maxHeaderSize, maxHeaderListSize: limits.maxHeaderSize, maxHeaderFieldCount: 200)))
        guard let tls else { return http }
        return try .tls(http, tlsConfiguration: tls.serverConfiguration())
    }

    /// For `Application(onServerRunning:)`: puts ``AcceptBackoffHandler`` first in the
    /// listening channel's pipeline.
    public static func onServerRunning(logger: Logger) -> @Sendable (any Channel) async -> Void {
        { channel in
            do {
                try await channel.eventLoop.submit {
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler(logger: logger), position: .first)
                }.get()
            } catch {
                logger.error("cannot install the accept back-off", metadata: ["error": "\(error)"])
            }
        }
    }
}
