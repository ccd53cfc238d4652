/// How to reach the shared PostgreSQL database, and how long to wait for it.
///
/// The timeouts are what keep the gateway serving when the database goes away: no metadata
/// call waits longer than ``queryTimeout`` (plus, for the first call after a failure, the
/// connection attempt), then it throws ``StorageError`` `.unavailable`.
public struct PostgresConfiguration: Sendable {
    /// How the connection is encrypted (libpq's `sslmode` names).
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it, without verifying the certificate; plain otherwise.
        case prefer
        /// TLS or nothing, without verifying the certificate.
        case require
        /// TLS or nothing, with the certificate verified against the system roots and the host.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    /// Nil: no password (trust or peer authentication).
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// Connections the pool may open; one of them listens for notifications.
    public var poolSize: Int
    /// The longest a TCP connection plus authentication may take.
    public var connectTimeout: Duration
    /// The longest one metadata call (waiting for a connection, then its statements) may take;
    /// also the server-side `statement_timeout` and `lock_timeout`.
    public var queryTimeout: Duration
    /// The longest a schema migration may wait for another replica's migration to finish.
    public var migrationTimeout: Duration
    /// How often waiters poll for a lease release that a lost notification did not announce,
    /// and how often the budget ledger re-reads the shared blocks.
    public var pollInterval: Duration
    /// `application_name` in `pg_stat_activity`.
    public var applicationName: String

    public init(
        host: String, port: Int = 5432, username: String, password: String?, database: String, tls: TLSMode = .prefer,
        poolSize: Int = 8, connectTimeout: Duration = .seconds(5), queryTimeout: Duration = .seconds(5),
        migrationTimeout: Duration = .seconds(120), pollInterval: Duration = .seconds(1), applicationName: String = "mirrorgate"
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.poolSize = poolSize
        self.connectTimeout = connectTimeout
        self.queryTimeout = queryTimeout
        self.migrationTimeout = migrationTimeout
        self.pollInterval = pollInterval
        self.applicationName = applicationName
    }

    /// `postgres://user@host:port/database` (never the password), for logs and errors.
    public var displayURL: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(username)@\(h):\(port)/\(database)"
    }
}
