import Foundation
import Logging
import MirrorGateConfig
import MirrorGatePostgres
import MirrorGateStorage

/// The PostgreSQL database several replicas share (`metadata.backend: postgres`), open and
/// running: checked (an unreachable database or a refused password stops start-up, naming
/// what failed), migrated, and with its pool running in a task of its own, so the cache can be
/// reconciled before the service group starts and the database outlives every service.
public struct SharedState: Sendable {
    public let database: PostgresDatabase
    public let metadata: PostgresMetadataStore
    /// Cross-replica leases (blob fetches, janitor leadership).
    public let leases: PostgresFetchLeases
    /// This process, as other replicas see it in the leases.
    public let owner: LeaseOwner
    let leadership: PostgresJanitorLeadership
    private let running: Task<Void, Never>

    /// How long janitor leadership lasts without a pass: many janitor intervals, longer than
    /// one eviction pass takes.
    static let leadershipTTL: Duration = .seconds(60)

    /// Opens the database `config.metadata.postgres` names.
    ///
    /// - Parameter role: the replica's name when `cluster` does not give one (`mirrorgate gc`).
    static func open(_ config: GatewayConfig, role: String? = nil, logger: Logger) async throws -> SharedState {
        guard let pg = config.metadata.postgres else {
            throw StorageError(.unavailable, operation: "open the metadata database", cause: "metadata.postgres: required when metadata.backend is postgres")
        }
        let configuration = PostgresConfiguration(
            host: pg.host, port: pg.port, username: pg.user, password: pg.password?.value, database: pg.database,
            tls: PostgresConfiguration.TLSMode(rawValue: pg.sslMode.rawValue) ?? .prefer, poolSize: pg.poolSize)
        let database = try PostgresDatabase(configuration: configuration, logger: logger)
        let check = try await database.checkConnection()
        try await database.migrate()
        logger.info("metadata is shared in PostgreSQL", metadata: [
            "database": "\(configuration.displayURL)", "server_version": "\(check.serverVersion)",
            "clock_offset_ms": "\(PostgresFailureFormat.milliseconds(check.clockOffset))",
        ])
        let owner = LeaseOwner.replica(name: role ?? replicaName(config), url: config.cluster?.advertiseURL.description ?? "")
        let leases = PostgresFetchLeases(database: database)
        let leadership = PostgresJanitorLeadership(leases: leases, owner: owner, ttl: leadershipTTL, logger: logger)
        let running = Task {
            do {
                try await database.run()
            } catch {
                logger.error("PostgreSQL pool stopped", metadata: ["error": "\(error)"])
            }
        }
        return SharedState(
            database: database, metadata: PostgresMetadataStore(database: database), leases: leases, owner: owner, leadership: leadership,
            running: running)
    }

    /// The replica's name: the pod name, else the host name, with the peer port so that
    /// replicas on one host differ.
    static func replicaName(_ config: GatewayConfig) -> String {
        let env = ProcessInfo.processInfo.environment
        let host = env["POD_NAME"] ?? env["HOSTNAME"] ?? ProcessInfo.processInfo.hostName
        guard let peer = config.cluster?.peerListen.port else { return host }
        return "\(host)-\(peer)"
    }

    /// A name safe as one path component, for the replica's spool directory.
    /// Two live replicas never advertise one address; a tool (`role`) gets one per process, so
    /// it never cleans a running replica's spools.
    static func spoolName(_ config: GatewayConfig, role: String?) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        let base = role.map { "\($0)-\(ProcessInfo.processInfo.processIdentifier)" }
            ?? (config.cluster?.advertiseURL).map { "\($0.host)_\($0.port ?? 0)" } ?? replicaName(config)
        let safe = String(base.map { allowed.contains($0) ? $0 : "_" })
        return safe.isEmpty || safe.hasPrefix(".") ? "replica" + safe : safe
    }

    /// Gives up what this replica holds (janitor leadership, fetch leases), so the others take
    /// over at once instead of after a TTL, then stops the pool.
    func close(logger: Logger) async {
        await leadership.resign()
        if let held = try? await leases.leases(heldBy: owner.id) {
            for lease in held { try? await leases.release(lease) }
        }
        running.cancel()
        await running.value
    }
}

enum PostgresFailureFormat {
    static func milliseconds(_ d: Duration) -> Int64 {
        let (s, atto) = d.components
        return s * 1000 + atto / 1_000_000_000_000_000
    }
}
