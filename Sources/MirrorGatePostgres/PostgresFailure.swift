import MirrorGateStorage
import PostgresNIO

/// What a failed database call means for the caller: a ``StorageError`` with a code it can act
/// on, and whether the database was reached at all (which opens the ``AvailabilityGate``).
struct PostgresFailure: Error {
    let storageError: StorageError
    /// The database could not be reached or could not serve (down, restarting, refusing us).
    let unreachable: Bool

    /// The deadline of a call passed (a hung connection, a pool that cannot connect).
    struct DeadlineExceeded: Error {
        let timeout: Duration
    }

    static func classify(_ error: any Error, operation: String) -> PostgresFailure {
        if let failure = error as? PostgresFailure { return failure }
        if let storage = error as? StorageError { return PostgresFailure(storageError: storage, unreachable: storage.code == .unavailable) }
        if let deadline = error as? DeadlineExceeded {
            return PostgresFailure(
                storageError: StorageError(.unavailable, operation: operation, cause: "PostgreSQL did not answer within \(seconds(deadline.timeout))"),
                unreachable: true)
        }
        if error is CancellationError {
            return PostgresFailure(storageError: StorageError(.unavailable, operation: operation, cause: "cancelled"), unreachable: false)
        }
        if let psql = error as? PSQLError {
            return classify(psql, operation: operation)
        }
        if error is PostgresDecodingError {
            return PostgresFailure(
                storageError: StorageError(.io, operation: operation, cause: "unexpected column type", logDetail: String(reflecting: error)),
                unreachable: false)
        }
        // The pool's own errors (its circuit breaker), NIO channel errors: no database.
        return PostgresFailure(
            storageError: StorageError(.unavailable, operation: operation, cause: "PostgreSQL unreachable", logDetail: String(reflecting: error)),
            unreachable: true)
    }

    private static func classify(_ error: PSQLError, operation: String) -> PostgresFailure {
        let detail = String(reflecting: error)
        guard error.code == .server, let state = error.serverInfo?[.sqlState] else {
            let cause: String = switch error.code {
            case .connectionError: "cannot connect to PostgreSQL"
            case .serverClosedConnection, .uncleanShutdown: "PostgreSQL closed the connection"
            case .clientClosedConnection, .poolClosed: "connection to PostgreSQL closed"
            case .sslUnsupported: "PostgreSQL does not offer TLS (sslmode requires it)"
            case .authMechanismRequiresPassword: "PostgreSQL asks for a password and none is configured"
            case .unsupportedAuthMechanism: "PostgreSQL asks for an authentication method this client does not support"
            case .saslError: "SCRAM authentication with PostgreSQL failed"
            case .queryCancelled: "query cancelled"
            default: "PostgreSQL connection failed (\(error.code))"
            }
            return PostgresFailure(storageError: StorageError(.unavailable, operation: operation, cause: cause, logDetail: detail), unreachable: true)
        }
        let message = error.serverInfo?[.message] ?? ""
        let sqlClass = state.prefix(2)
        switch sqlClass {
        case "22", "23", "42", "0A", "2B", "2D", "XX":
            // Data, constraint, syntax, feature: a bug in this code or a schema another
            // version changed, not an outage.
            return PostgresFailure(
                storageError: StorageError(.io, operation: operation, cause: "PostgreSQL error \(state)", logDetail: "\(message) \(detail)"),
                unreachable: false)
        case "40", "55":
            // Serialization failure, deadlock, lock timeout: the database is there but busy.
            return PostgresFailure(
                storageError: StorageError(.unavailable, operation: operation, cause: "PostgreSQL busy (\(state))", logDetail: "\(message) \(detail)"),
                unreachable: false)
        case "28":
            return PostgresFailure(
                storageError: StorageError(.unavailable, operation: operation, cause: "PostgreSQL refused the credentials (\(state): \(message))", logDetail: detail),
                unreachable: true)
        case "3D":
            return PostgresFailure(
                storageError: StorageError(.unavailable, operation: operation, cause: "PostgreSQL has no such database (\(state): \(message))", logDetail: detail),
                unreachable: true)
        case "57" where state == "57014":
            return PostgresFailure(
                storageError: StorageError(.unavailable, operation: operation, cause: "PostgreSQL cancelled a statement that took too long", logDetail: "\(message) \(detail)"),
                unreachable: false)
        default:
            // 08 connection, 53 resources, 57 shutting down or starting up, 58 system.
            return PostgresFailure(
                storageError: StorageError(.unavailable, operation: operation, cause: "PostgreSQL unavailable (\(state))", logDetail: "\(message) \(detail)"),
                unreachable: true)
        }
    }

    static func seconds(_ d: Duration) -> String {
        let (s, atto) = d.components
        let ms = s * 1000 + atto / 1_000_000_000_000_000
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }
}
