import Logging
import MirrorGateStorage
import NIOSSL
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The connection to the shared PostgreSQL database: a `PostgresClient` pool, the one
/// connection that listens for notifications, deadlines on every call, and the
/// ``AvailabilityGate`` that makes calls fail fast while the database is down.
///
/// It is a ServiceLifecycle `Service`: run it in the gateway's `ServiceGroup` **before** the
/// services that use it (the group stops services in reverse order, so the database stays up
/// while the others flush and release their leases). Without ``run()`` every call waits for
/// its deadline and throws `.unavailable`.
///
/// Every call throws ``StorageError``: `.unavailable` when the database cannot be reached
/// (the first call after it went away within ``PostgresConfiguration/queryTimeout``, then at
/// once, while one call a poll interval probes it on a connection of its own), `.io` for an
/// error in a statement. The pool reconnects by itself when the database returns.
public final class PostgresDatabase: Service {
    public let configuration: PostgresConfiguration
    let client: PostgresClient
    let logger: Logger
    let hub = NotificationHub()
    private let gate: Mutex<AvailabilityGate>
    private let started = Atomic(false)

    /// The channel every notification of this gateway goes to; payloads say what changed.
    static let channel = "mirrorgate"

    public init(configuration: PostgresConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        gate = Mutex(AvailabilityGate(cooldown: configuration.pollInterval))
        var client = PostgresClient.Configuration(
            host: configuration.host, port: configuration.port, username: configuration.username,
            password: configuration.password, database: configuration.database, tls: try Self.clientTLS(configuration.tls))
        client.options.connectTimeout = configuration.connectTimeout
        client.options.maximumConnections = configuration.poolSize
        client.options.additionalStartupParameters = Self.startupParameters(configuration)
        client.options.keepAliveBehavior = .init(frequency: .seconds(15))
        self.client = PostgresClient(configuration: client, backgroundLogger: logger)
    }

    /// Runs the pool and the notification listener until cancelled or shut down gracefully.
    /// Once per instance (a pool that stopped is closed for good).
    public func run() async throws {
        guard !started.exchange(true, ordering: .relaxed) else {
            throw StorageError(.io, operation: "postgres run", cause: "PostgresDatabase.run() called twice; make a new instance")
        }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.client.run() }
            group.addTask { await cancelWhenGracefulShutdown { await self.listen() } }
        }
    }

    /// Whether the last call reached the database (for `/readyz` and the status page), and
    /// why not.
    public var health: (reachable: Bool, reason: String?) {
        gate.withLock { ($0.isUp, $0.downReason) }
    }

    // MARK: Calls

    /// Runs `body` on a pooled connection within the deadline, through the gate.
    func withConnection<T: Sendable>(
        _ operation: String, timeout: Duration? = nil, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let admission = gate.withLock { $0.admit(now: .now) }
        if case .failFast(let reason) = admission {
            throw StorageError(.unavailable, operation: operation, cause: reason)
        }
        do {
            if admission == .probe {
                // The pool hides why it cannot connect and retries quietly until the deadline:
                // a connection of its own answers at once ("connection refused") and says why.
                try await withDirectConnection(operation, timeout: configuration.queryTimeout) { connection, logger in
                    try await connection.run("SELECT 1", logger: logger)
                }
            }
            let value = try await Self.withDeadline(timeout ?? configuration.queryTimeout) { register in
                try await self.client.withConnection { connection in
                    register(connection)
                    return try await body(connection)
                }
            }
            let wasDown = gate.withLock { g -> Bool in
                defer { g.reached() }
                return !g.isUp
            }
            if wasDown {
                logger.notice("PostgreSQL answers again; metadata calls go to it", metadata: ["database": "\(configuration.displayURL)"])
            }
            return value
        } catch {
            let failure = PostgresFailure.classify(error, operation: operation)
            if error is CancellationError || Task.isCancelled {
                gate.withLock { $0.abandoned(wasProbe: admission == .probe) }
            } else if failure.unreachable {
                let newlyDown = gate.withLock { g -> Bool in
                    defer { g.unreachable(failure.storageError.cause, now: .now) }
                    return g.isUp
                }
                if newlyDown {
                    logger.error("PostgreSQL unreachable; metadata calls fail fast until it answers again", metadata: [
                        "database": "\(configuration.displayURL)", "error": "\(failure.storageError.logDescription)",
                    ])
                }
            } else {
                gate.withLock { $0.reached() }
            }
            throw failure.storageError
        }
    }

    /// ``withConnection(_:timeout:_:)`` inside `BEGIN … COMMIT` (rolled back when `body` throws).
    func transaction<T: Sendable>(
        _ operation: String, timeout: Duration? = nil, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withConnection(operation, timeout: timeout) { connection in
            try await connection.run("BEGIN", logger: self.logger)
            do {
                let value = try await body(connection)
                try await connection.run("COMMIT", logger: self.logger)
                return value
            } catch {
                try? await connection.run("ROLLBACK", logger: self.logger)
                throw error
            }
        }
    }

    private enum Race<T: Sendable>: Sendable {
        case value(T)
        case timedOut
    }

    /// Runs `body`, or throws ``PostgresFailure/DeadlineExceeded`` after `timeout`. A query on
    /// a connection that hangs (a peer gone without a reset) cannot be cancelled, so at the
    /// deadline the connection `body` registered is closed, which fails the query at once.
    static func withDeadline<T: Sendable>(
        _ timeout: Duration, _ body: @escaping @Sendable (_ register: @Sendable (PostgresConnection) -> Void) async throws -> T
    ) async throws -> T {
        let active = ConnectionSlot()
        return try await withThrowingTaskGroup(of: Race<T>.self) { group in
            group.addTask { .value(try await body { connection in active.set(connection) }) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return .timedOut
            }
            defer { group.cancelAll() }
            switch try await group.next()! {
            case .value(let value):
                return value
            case .timedOut:
                active.get()?.closeNow()
                throw PostgresFailure.DeadlineExceeded(timeout: timeout)
            }
        }
    }

    // MARK: Notifications

    /// Sends a notification to every replica (within the caller's transaction, if any: it is
    /// delivered at commit).
    static func notify(_ payload: String, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("SELECT pg_notify(\(channel), \(payload))", logger: logger)
    }

    /// Keeps one connection listening; wakes every waiter after each (re)connect, because what
    /// was sent while no connection listened is gone.
    private func listen() async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        self.hub.wakeAll()
                        for try await notification in notifications {
                            self.hub.deliver(notification.payload)
                        }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                logger.debug("notification listener lost its connection", metadata: ["error": "\(String(reflecting: error))"])
            }
            hub.wakeAll()
            try? await Task.sleep(for: configuration.pollInterval)
        }
    }

    // MARK: Setup

    static func startupParameters(_ c: PostgresConfiguration) -> [(String, String)] {
        let timeout = Self.milliseconds(c.queryTimeout)
        return [
            ("application_name", c.applicationName),
            ("statement_timeout", "\(timeout)"),
            ("lock_timeout", "\(timeout)"),
            // A replica cut off in the middle of a transaction must not hold a budget's row
            // lock for long: the server ends such a session.
            ("idle_in_transaction_session_timeout", "\(timeout * 2)"),
            ("TimeZone", "UTC"),
        ]
    }

    static func milliseconds(_ d: Duration) -> Int64 {
        let (s, atto) = d.components
        return max(1, s * 1000 + atto / 1_000_000_000_000_000)
    }

    static func clientTLS(_ mode: PostgresConfiguration.TLSMode) throws -> PostgresClient.Configuration.TLS {
        switch mode {
        case .disable: return .disable
        case .prefer: return .prefer(unverified())
        case .require: return .require(unverified())
        case .verifyFull: return .require(.makeClientConfiguration())
        }
    }

    static func unverified() -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        return tls
    }
}

/// The connection a call with a deadline is using, so the deadline can close it.
private final class ConnectionSlot: Sendable {
    private let connection = Mutex<PostgresConnection?>(nil)
    func set(_ c: PostgresConnection) { connection.withLock { $0 = c } }
    func get() -> PostgresConnection? { connection.withLock { $0 } }
}

extension PostgresConnection {
    /// Runs a statement and discards its rows.
    func run(_ query: PostgresQuery, logger: Logger) async throws {
        _ = try await self.query(query, logger: logger).collect()
    }

    /// Runs a query and collects its rows.
    func rows(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        try await self.query(query, logger: logger).collect()
    }

    /// Closes the channel without waiting (the pool sees it close and replaces it).
    func closeNow() {
        let close: () -> Void = self.close
        close()
    }
}
