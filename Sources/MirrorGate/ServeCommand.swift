import ArgumentParser
import Foundation
import Hummingbird
import Logging
import MirrorGateConfig
import MirrorGateCore
import MirrorGateHTTP
import MirrorGateLogging
import MirrorGateStorage
import MirrorGateUpstream
import ServiceLifecycle

/// `mirrorgate serve`: runs the gateway until SIGTERM or SIGINT, then finishes in-flight
/// responses and exits.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway."
    )

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "Log level (overrides log.level): trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    func run() async throws {
        // Before any event loop or thread pool starts: glibc fixes its arenas as threads appear.
        SystemAllocator.configure()
        let config: GatewayConfig
        do {
            config = try ConfigLoader().load(file: options.config)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let level = Logger.Level(rawValue: logLevel ?? config.log.level) ?? .info
        bootstrapLogging(config.log.format, level: level)
        let logger = Logger(label: "mirrorgate")
        let metrics = MetricsExporter.bootstrap()
        let maxConnections = raiseOpenFileLimit(config.limits, logger: logger)

        let authenticator: InboundAuthenticator?
        let tls: ReloadableTLS?
        do {
            authenticator = try config.auth.map { a throws in try InboundAuthenticator(config: a, logger: logger) }
            tls = try config.tls.map { t throws in try ReloadableTLS(config: t, logger: logger) }
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }

        logger.info("listening", metadata: [
            "address": "\(config.listen)", "tls": "\(tls != nil)", "auth": "\(authenticator != nil ? "htpasswd" : "none")",
            "admin": "\(config.adminListen?.description ?? "same listener")",
        ])
        for registry in config.registries {
            logger.info("registry", metadata: [
                "registry": "\(registry.key)",
                "upstreams": "\(registry.upstreams.map { "\($0.name) \($0.url)" }.joined(separator: " -> "))",
                "users": "\(registry.users?.joined(separator: ",") ?? "all")",
                "policy": "\(registry.policy?.summary ?? "every repository")",
            ])
            if let exposure = config.exposure(of: registry) {
                logger.warning("registry pulls with credentials for everyone", metadata: ["registry": "\(registry.key)", "exposure": "\(exposure)"])
            }
            if let users = registry.users, let authenticator {
                let unknown = users.filter { !authenticator.knows(user: $0) }
                if !unknown.isEmpty {
                    logger.warning("registries.<key>.users names users the htpasswd file does not have", metadata: [
                        "registry": "\(registry.key)", "users": "\(unknown.joined(separator: ","))",
                    ])
                }
            }
        }

        let components: GatewayComponents
        do {
            components = try await GatewayComponents.make(config, logger: logger)
        } catch {
            // An unusable cache (a directory that cannot be created, a bucket that does not
            // answer or refuses the credentials) stops start-up, saying what failed.
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let service = components.service
        let readiness = Readiness(degradations: { components.degradations })
        let rules = AccessRules(config: config)
        let pullLedger = PullLedger(store: components.pullLedgerStore, retention: config.ledger.retention, logger: logger)
        let responder = RegistryResponder<GatewayRequestContext>(
            service: service, namespaces: NamespaceRouter(config: config), logger: logger,
            authenticator: authenticator, metrics: metrics, servesAdmin: config.adminListen == nil, rules: rules, ledger: pullLedger,
            servesStatus: config.auth != nil || config.adminListen == nil, readiness: readiness)

        let app = Application(
            responder: responder,
            server: try ServerSetup.serverBuilder(
                limits: config.limits, tls: tls, connections: ConnectionGauge(limit: maxConnections, listener: "listen", logger: logger),
                logger: logger),
            configuration: .init(address: .hostname(config.listen.host, port: config.listen.port), serverName: nil),
            onServerRunning: ServerSetup.onServerRunning(logger: logger),
            logger: logger
        )
        // Services stop in reverse order: the ledger, first here, writes what the last
        // responses recorded after the listeners have drained.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: pullLedger)]
            + components.services.map { .init(service: $0) } + [
            .init(service: IdleMemoryRelease(logger: logger)),
            .init(service: app),
            .init(service: ReloadService(
                tls: tls, authenticator: authenticator, configPath: options.config, config: config, rules: rules, ledger: pullLedger, logger: logger)),
        ]
        if let admin = config.adminListen {
            let adminApp = Application(
                responder: AdminResponder<GatewayRequestContext>(
                    service: service, metrics: metrics, readiness: readiness, rules: rules, ledger: pullLedger, logger: logger),
                server: try ServerSetup.serverBuilder(
                    limits: config.limits, tls: nil,
                    connections: ConnectionGauge(limit: OpenFileLimit.adminConnections, listener: "admin_listen", logger: logger),
                    logger: logger),
                configuration: .init(address: .hostname(admin.host, port: admin.port), serverName: nil),
                onServerRunning: ServerSetup.onServerRunning(logger: logger),
                logger: logger)
            services.append(.init(service: adminApp))
        }
        if let cluster = config.cluster {
            // Other replicas stream this one's in-flight blobs from here; stopped after the
            // main listener (services stop in reverse), so followers finish with the fetch.
            let peerApp = Application(
                responder: PeerResponder<GatewayRequestContext>(blobs: components.peerBlobs, token: cluster.peerToken.value, logger: logger),
                server: try ServerSetup.serverBuilder(
                    limits: config.limits, tls: nil,
                    connections: ConnectionGauge(limit: OpenFileLimit.adminConnections, listener: "cluster.peer_listen", logger: logger),
                    logger: logger),
                configuration: .init(address: .hostname(cluster.peerListen.host, port: cluster.peerListen.port), serverName: nil),
                onServerRunning: ServerSetup.onServerRunning(logger: logger),
                logger: logger)
            services.insert(.init(service: peerApp), at: 1 + components.services.count)
        }
        // Last, so it is the first to stop: /readyz fails while connections are still accepted.
        services.append(.init(service: ShutdownGrace(readiness: readiness, grace: config.shutdown.grace, logger: logger)))
        var groupConfiguration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // Past the grace period and the drain bound, what is left is cancelled.
        groupConfiguration.maximumGracefulShutdownDuration = config.shutdown.grace + config.shutdown.drainTimeout
        let group = ServiceGroup(configuration: groupConfiguration)
        do {
            try await group.run()
        } catch {
            logger.error("stopped with an error", metadata: ["error": "\(error)"])
        }
        try await components.shutdown()
        logger.info("stopped")
    }
}

/// Raises the soft open-file limit to the hard one and returns the connection cap the result
/// affords (`limits.max_connections`, or less), logging both.
func raiseOpenFileLimit(_ limits: LimitsConfig, logger: Logger) -> Int {
    guard let (before, after) = OpenFileLimit.raiseSoftToHard() else {
        logger.warning("cannot read the open-file limit; limits.max_connections applies as configured")
        return limits.maxConnections
    }
    let affordable = OpenFileLimit.affordableConnections(
        configured: limits.maxConnections, openFiles: after.soft, maxConcurrentFetches: limits.maxConcurrentFetches)
    logger.info("open-file limit", metadata: [
        "soft_before": "\(before.soft)", "soft": "\(after.soft)", "hard": "\(after.hard)", "max_connections": "\(affordable)",
    ])
    if affordable < limits.maxConnections {
        logger.warning("limits.max_connections lowered to what the open-file limit affords; raise LimitNOFILE or ulimit -n", metadata: [
            "configured": "\(limits.maxConnections)", "max_connections": "\(affordable)", "open_files": "\(after.soft)",
        ])
    }
    return affordable
}

/// Installs the log handler `log.format` names.
func bootstrapLogging(_ format: LogConfig.Format, level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler: any LogHandler = switch format {
        case .text: LineLogHandler(label: label, format: .text)
        case .json: LineLogHandler(label: label, format: .json)
        case .logfmt: LineLogHandler(label: label, format: .logfmt)
        }
        handler.logLevel = level
        return handler
    }
}
