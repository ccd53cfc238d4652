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
            ])
        }

        let (blobs, metadata, janitor) = try await openCache(config, logger: logger)
        let client = UpstreamClient(timeout: config.health.timeout, logger: logger)
        let ledger = LocalBudgetLedger(limits: BudgetKey.limits(config), journal: metadata, logger: logger)
        await ledger.load()
        let pool = UpstreamPool(
            client: client, router: UpstreamRouter(config: config), health: UpstreamHealth(config: config), ledger: ledger, logger: logger)
        let fetcher = BlobFetcher(
            pool: pool, blobs: blobs, metadata: metadata, stallTimeout: config.health.timeout,
            maxConcurrentFetches: config.limits.maxConcurrentFetches, logger: logger)
        fetcher.storageFailures.withLock { $0 = { janitor.storageFailed($0) } }
        fetcher.committed.withLock { $0 = { await janitor.enforceCap() } }
        let prober = HealthProber(pool: pool, interval: config.health.interval, logger: logger)
        let service = PullService(config: config, blobs: blobs, metadata: metadata, fetcher: fetcher, janitor: janitor, logger: logger)
        let readiness = Readiness()
        let responder = RegistryResponder<BasicRequestContext>(
            service: service, namespaces: NamespaceRouter(config: config), logger: logger,
            authenticator: authenticator, metrics: metrics, servesAdmin: config.adminListen == nil, readiness: readiness)

        let app = Application(
            responder: responder,
            server: try ServerSetup.serverBuilder(limits: config.limits, tls: tls, logger: logger),
            configuration: .init(address: .hostname(config.listen.host, port: config.listen.port), serverName: nil),
            logger: logger
        )
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: janitor), .init(service: fetcher), .init(service: prober), .init(service: IdleMemoryRelease(logger: logger)),
            .init(service: app),
            .init(service: ReloadService(tls: tls, authenticator: authenticator, logger: logger)),
        ]
        if let admin = config.adminListen {
            let adminApp = Application(
                responder: AdminResponder<BasicRequestContext>(service: service, metrics: metrics, readiness: readiness, logger: logger),
                server: try ServerSetup.serverBuilder(limits: config.limits, tls: nil, logger: logger),
                configuration: .init(address: .hostname(admin.host, port: admin.port), serverName: nil),
                logger: logger)
            services.append(.init(service: adminApp))
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
        try await client.shutdown()
        logger.info("stopped")
    }
}

/// Installs the log handler `log.format` names.
func bootstrapLogging(_ format: LogConfig.Format, level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler: any LogHandler = switch format {
        case .text: StreamLogHandler.standardError(label: label)
        case .json: LineLogHandler(label: label, format: .json)
        case .logfmt: LineLogHandler(label: label, format: .logfmt)
        }
        handler.logLevel = level
        return handler
    }
}

/// Opens the cache: blob store (removing temporary leftovers), metadata, and a janitor that
/// has reconciled the two (after a crash, files and rows may disagree).
func openCache(_ config: GatewayConfig, logger: Logger) async throws -> (FileBlobStore, SQLiteMetadataStore, CacheJanitor) {
    let blobs = try FileBlobStore(root: config.storage.path, logger: logger)
    let metadata = try SQLiteMetadataStore(path: blobs.root + "/metadata.sqlite")
    let janitor = CacheJanitor(blobs: blobs, metadata: metadata, maxSize: config.storage.maxSize, logger: logger)
    try await janitor.reconcile()
    return (blobs, metadata, janitor)
}
