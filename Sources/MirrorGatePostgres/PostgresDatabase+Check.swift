import Foundation
import MirrorGateStorage
import NIOCore
import NIOSSL
import PostgresNIO

/// What ``PostgresDatabase/checkConnection()`` found.
public struct PostgresConnectionCheck: Sendable, Equatable {
    /// `server_version` (`15.18 (Debian 15.18-0+deb12u1)`).
    public var serverVersion: String
    /// The database's clock minus this host's. Lease times come from the database only; the
    /// budget windows use the replicas' clocks, which should agree within a second or two.
    public var clockOffset: Duration
}

extension PostgresDatabase {
    /// Connects once, outside the pool, and asks the server its version and time: the start-up
    /// check (it needs no ``run()``). Unlike the pool (which retries quietly), it fails with what
    /// went wrong: the address cannot be reached, the password or user is refused, the database
    /// does not exist.
    ///
    /// - Throws: ``StorageError`` `.unavailable` whose description names the database URL and
    ///   the failure (never the password).
    public func checkConnection() async throws -> PostgresConnectionCheck {
        let operation = "connect to \(configuration.displayURL)"
        return try await withDirectConnection(operation, timeout: configuration.queryTimeout) { connection, logger in
            let before = Date()
            let rows = try await connection.rows("SELECT current_setting('server_version'), now()", logger: logger)
            let after = Date()
            guard let (version, now) = try rows.first?.decode((String, Date).self) else {
                throw StorageError(.io, operation: operation, cause: "the server answered no row")
            }
            let local = before.addingTimeInterval(after.timeIntervalSince(before) / 2)
            return PostgresConnectionCheck(serverVersion: version, clockOffset: .milliseconds(Int64(now.timeIntervalSince(local) * 1000)))
        }
    }

    /// Runs `body` on a connection of its own, outside the pool (start-up work before ``run()``),
    /// within the connect timeout plus `timeout`; connection failures are named.
    func withDirectConnection<T: Sendable>(
        _ operation: String, timeout: Duration, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws -> T {
        let c = configuration
        var settings = PostgresConnection.Configuration(
            host: c.host, port: c.port, username: c.username, password: c.password, database: c.database,
            tls: try Self.connectionTLS(c.tls, operation: operation))
        settings.options.connectTimeout = .milliseconds(Self.milliseconds(c.connectTimeout))
        settings.options.additionalStartupParameters = Self.startupParameters(c)
        let connectionConfiguration = settings
        let logger = self.logger
        do {
            return try await Self.withDeadline(c.connectTimeout + timeout) { register in
                let connection = try await PostgresConnection.connect(configuration: connectionConfiguration, id: 0, logger: logger)
                register(connection)
                do {
                    let value = try await body(connection, logger)
                    try? await connection.close()
                    return value
                } catch {
                    try? await connection.close()
                    throw error
                }
            }
        } catch let error as StorageError {
            throw error
        } catch {
            let failure = PostgresFailure.classify(error, operation: operation)
            if let psql = error as? PSQLError, psql.code == .connectionError, let underlying = psql.underlying {
                throw StorageError(.unavailable, operation: operation, cause: "cannot connect: \(Self.connectionReason(underlying))", logDetail: String(reflecting: error))
            } else if error is PostgresFailure.DeadlineExceeded {
                throw StorageError(.unavailable, operation: operation, cause: "no answer within \(PostgresFailure.seconds(c.connectTimeout + timeout))")
            }
            throw failure.storageError
        }
    }

    /// `connection refused`, `connect timeout`, `no such host`: the socket error in words.
    static func connectionReason(_ error: any Error) -> String {
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode)).lowercased()
        }
        if let channel = error as? ChannelError, case .connectTimeout = channel {
            return "connect timeout"
        }
        if let connection = error as? NIOConnectionError {
            if let first = connection.connectionErrors.first { return connectionReason(first.error) }
            if connection.dnsAError != nil || connection.dnsAAAAError != nil { return "cannot resolve \(connection.host)" }
            return "no address for \(connection.host)"
        }
        if let ssl = error as? NIOSSLError { return "TLS failed (\(ssl))" }
        return String(describing: error)
    }

    static func connectionTLS(_ mode: PostgresConfiguration.TLSMode, operation: String) throws -> PostgresConnection.Configuration.TLS {
        do {
            switch mode {
            case .disable: return .disable
            case .prefer: return .prefer(try NIOSSLContext(configuration: unverified()))
            case .require: return .require(try NIOSSLContext(configuration: unverified()))
            case .verifyFull: return .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
        } catch {
            throw StorageError(.unavailable, operation: operation, cause: "cannot set up TLS", logDetail: "\(error)")
        }
    }
}
