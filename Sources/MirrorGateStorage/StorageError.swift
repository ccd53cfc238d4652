import RegistryModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a storage operation failed: a code a caller can act on, what was being done, and the
/// underlying cause (an errno, a database error, an object store's answer).
///
/// The code is an opaque struct, as `FileSystemError.Code` in swift-nio and `HTTPClientError`
/// in AsyncHTTPClient are, so a new backend can add causes without breaking code that
/// switches over the error. Callers ask the code, never `errno`: the store reports its own
/// health.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String { case notFound, resourceExhausted, readOnly, unavailable, digestMismatch, io }
        private let value: Value

        /// The object is not there.
        public static let notFound = Code(value: .notFound)
        /// The store is full (no space, over quota).
        public static let resourceExhausted = Code(value: .resourceExhausted)
        /// The store cannot be written (read-only, permission denied).
        public static let readOnly = Code(value: .readOnly)
        /// The store did not answer (a database or bucket that went away).
        public static let unavailable = Code(value: .unavailable)
        /// Bytes written for a digest did not hash to it.
        public static let digestMismatch = Code(value: .digestMismatch)
        /// Any other failure of the underlying I/O.
        public static let io = Code(value: .io)

        public var description: String { value.rawValue }
    }

    public var code: Code
    /// What was being done (`write blob`, `commit`, `metadata query`).
    public var operation: String
    /// The underlying cause, in words (never a credential, never a file system path).
    public var cause: String
    /// More for the operator's log only (a database's own message, which may name files).
    public var logDetail: String?

    public init(_ code: Code, operation: String, cause: String, logDetail: String? = nil) {
        self.code = code
        self.operation = operation
        self.cause = cause
        self.logDetail = logDetail
    }

    /// A failed system call: the code follows from `errno`; `path` goes to the log only.
    public static func system(_ operation: String, errno code: Int32, path: String? = nil) -> StorageError {
        let kind: Code = switch code {
        case ENOSPC, EDQUOT: .resourceExhausted
        case EROFS, EACCES, EPERM: .readOnly
        case ENOENT: .notFound
        default: .io
        }
        return StorageError(kind, operation: operation, cause: "\(errnoName(code)), \(String(cString: strerror(code)))", logDetail: path)
    }

    /// The symbolic name of the errno values storage runs into; `errno N` otherwise.
    static func errnoName(_ code: Int32) -> String {
        switch code {
        case ENOSPC: "ENOSPC"
        case EROFS: "EROFS"
        case EDQUOT: "EDQUOT"
        case EACCES: "EACCES"
        case EPERM: "EPERM"
        case EIO: "EIO"
        case ENOENT: "ENOENT"
        case EMFILE: "EMFILE"
        case ENFILE: "ENFILE"
        case EFBIG: "EFBIG"
        case ENOTDIR: "ENOTDIR"
        case EISDIR: "EISDIR"
        default: "errno \(code)"
        }
    }

    public static func digestMismatch(expected: Digest, actual: Digest) -> StorageError {
        StorageError(.digestMismatch, operation: "commit \(expected)", cause: "content hashes to \(actual)")
    }

    /// The metadata database failed; `detail` (its own message) goes to the log only.
    public static func metadata(_ detail: String) -> StorageError {
        StorageError(.unavailable, operation: "metadata store", cause: "failed", logDetail: detail)
    }

    /// What failed and why, e.g. `write spool: ENOSPC, No space left on device`. Never a file
    /// system path: it reaches `/readyz`, the status page and clients.
    public var description: String { "\(operation): \(cause)" }

    /// The same as ``description`` (kept for callers that want the path-free form by name).
    public var summary: String { description }

    /// ``description`` with the operator-only detail, for log lines.
    public var logDescription: String { logDetail.map { "\(description) (\($0))" } ?? description }

    /// `true` when the store is full or cannot be written (new content is passed through).
    public var isOutOfSpaceOrReadOnly: Bool { code == .resourceExhausted || code == .readOnly }
}
