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

    public init(_ code: Code, operation: String, cause: String) {
        self.code = code
        self.operation = operation
        self.cause = cause
    }

    /// A failed system call: the code follows from `errno`.
    public static func system(_ operation: String, errno code: Int32) -> StorageError {
        let kind: Code = switch code {
        case ENOSPC, EDQUOT: .resourceExhausted
        case EROFS, EACCES, EPERM: .readOnly
        case ENOENT: .notFound
        default: .io
        }
        return StorageError(kind, operation: operation, cause: String(cString: strerror(code)))
    }

    public static func digestMismatch(expected: Digest, actual: Digest) -> StorageError {
        StorageError(.digestMismatch, operation: "commit \(expected)", cause: "content hashes to \(actual)")
    }

    /// The metadata database failed.
    public static func metadata(_ cause: String) -> StorageError {
        StorageError(.unavailable, operation: "metadata store", cause: cause)
    }

    public var description: String { "\(operation): \(cause)" }

    /// `true` when the store is full or cannot be written (new content is passed through).
    public var isOutOfSpaceOrReadOnly: Bool { code == .resourceExhausted || code == .readOnly }
}
