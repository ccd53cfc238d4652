import RegistryModel

/// Why a storage operation failed.
public enum StorageError: Error, Sendable, CustomStringConvertible {
    /// A system call failed (`errno` and what was being done).
    case io(operation: String, path: String, errno: Int32)
    /// Bytes written for a digest did not hash to it.
    case digestMismatch(expected: Digest, actual: Digest)
    /// The metadata database failed.
    case metadata(String)

    public var description: String {
        switch self {
        case .io(let operation, let path, let code):
            "\(operation) \(path): \(String(cString: strerror(code)))"
        case .digestMismatch(let expected, let actual):
            "digest mismatch: expected \(expected), content hashes to \(actual)"
        case .metadata(let message):
            "metadata store: \(message)"
        }
    }

    /// `true` when the disk is full or the storage cannot be written.
    public var isOutOfSpaceOrReadOnly: Bool {
        if case .io(_, _, let code) = self { return code == ENOSPC || code == EROFS || code == EDQUOT || code == EACCES }
        return false
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
