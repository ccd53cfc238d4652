import Logging
import MirrorGateHTTP
import ServiceLifecycle
import UnixSignals

/// Re-reads the TLS certificate and the htpasswd file on SIGHUP, without dropping connections.
struct ReloadService: Service {
    let tls: ReloadableTLS?
    let authenticator: InboundAuthenticator?
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            logger.notice("SIGHUP: reloading")
            tls?.reload()
            authenticator?.reload()
        }
    }
}
