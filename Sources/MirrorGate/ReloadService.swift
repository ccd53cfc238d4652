import Logging
import MirrorGateConfig
import MirrorGateHTTP
import ServiceLifecycle
import UnixSignals

/// On SIGHUP: re-reads the TLS certificate and the htpasswd file (without dropping
/// connections), and the configuration file, applying what can change safely
/// (``ConfigReload/reloadableKeys``) and logging what waits for a restart.
struct ReloadService: Service {
    let tls: ReloadableTLS?
    let authenticator: InboundAuthenticator?
    /// The configuration file `serve` was started with, and what it said then.
    let configPath: String
    let config: GatewayConfig
    let rules: AccessRules
    let ledger: PullLedger?
    let logger: Logger

    func run() async throws {
        var running = config
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            logger.notice("SIGHUP: reloading")
            tls?.reload()
            authenticator?.reload()
            running = reloadConfiguration(running)
        }
    }

    /// Applies the file's reloadable keys to `running` and returns the result.
    func reloadConfiguration(_ running: GatewayConfig) -> GatewayConfig {
        let file: GatewayConfig
        do {
            file = try ConfigLoader().load(file: configPath)
        } catch {
            logger.error("configuration not reloaded: the file does not load; every setting stays as it was", metadata: ["error": "\(error)"])
            return running
        }
        let reload = ConfigReload(running: running, file: file)
        rules.update(reload.config)
        ledger?.setRetention(reload.config.ledger.retention)
        logger.notice("configuration reloaded", metadata: [
            "applied": "\(reload.applied.isEmpty ? "nothing changed" : reload.applied.joined(separator: ", "))",
            "reloadable": "\(ConfigReload.reloadableKeys.joined(separator: ", "))",
        ])
        if !reload.needsRestart.isEmpty {
            logger.warning("configuration changes ignored until a restart", metadata: ["keys": "\(reload.needsRestart.joined(separator: ", "))"])
        }
        if let authenticator {
            for registry in reload.config.registries where reload.applied.contains("registries.\(registry.key).users") {
                let unknown = (registry.users ?? []).filter { !authenticator.knows(user: $0) }
                if !unknown.isEmpty {
                    logger.warning("registries.<key>.users names users the htpasswd file does not have", metadata: [
                        "registry": "\(registry.key)", "users": "\(unknown.joined(separator: ","))",
                    ])
                }
            }
        }
        return reload.config
    }
}
