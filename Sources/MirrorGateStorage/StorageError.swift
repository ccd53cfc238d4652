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

    /// What failed without where: the operation and the errno class (`write: ENOSPC, No space
    /// left on device`), never the file's path. For `/readyz`, the status page and clients;
    /// the log keeps ``description``.
    public var summary: String {
        switch self {
        case .io(let operation, _, let code):
            "\(operation): \(Self.errnoName(code)), \(String(cString: strerror(code)))"
        case .digestMismatch:
            "digest mismatch"
        case .metadata:
            "metadata store failed"
        }
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
