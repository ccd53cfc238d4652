import Foundation
import Logging
import NIOPosix
import RegistryModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The local directory where every store keeps its ``Spool``s: `storage.path/tmp` for the file
/// system store (same file system as the blobs, so a commit is a rename) and for an object
/// store (the staging area an upload reads from, like zot's `downloadDir`). Spools are local
/// whatever the store, so followers of an in-flight fetch read the same file the fetch writes.
///
/// It is the only way to make a spool outside this module: a store gets spools, never the
/// paths behind them.
public struct SpoolDirectory: Sendable {
    let path: String
    let threadPool: NIOThreadPool

    /// Opens (and creates) the directory. Spools left by an earlier run are removed: no fetch
    /// survives a restart, so nothing follows them.
    public init(path: String, threadPool: NIOThreadPool = .singleton, logger: Logger) throws(StorageError) {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        self.path = absolute
        self.threadPool = threadPool
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: absolute, withIntermediateDirectories: true)
        } catch {
            throw StorageError.system("create the spool directory", errno: errno == 0 ? EACCES : errno, path: absolute)
        }
        let leftovers = (try? fm.contentsOfDirectory(atPath: absolute)) ?? []
        for name in leftovers {
            try? fm.removeItem(atPath: absolute + "/" + name)
        }
        if !leftovers.isEmpty {
            logger.info("removed leftover temporary files", metadata: ["count": "\(leftovers.count)"])
        }
    }

    /// Removes the spools other processes abandoned in the sibling directories of `path` (one
    /// per replica on a shared volume): files nobody wrote to for `olderThan`. A live fetch
    /// writes its spool continuously and gives up after a stall far shorter than that, so only
    /// the leftovers of a replica that died (and came back under another name) go. Directories
    /// stay: a live replica that is idle keeps its own.
    public static func removeAbandoned(besides path: String, olderThan age: TimeInterval, logger: Logger) {
        let own = URL(fileURLWithPath: path).standardizedFileURL
        let parent = own.deletingLastPathComponent().path
        let fm = FileManager.default
        let cutoff = Date().addingTimeInterval(-age)
        var removed = 0
        for sibling in (try? fm.contentsOfDirectory(atPath: parent)) ?? [] where sibling != own.lastPathComponent {
            let dir = parent + "/" + sibling
            for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] {
                let file = dir + "/" + name
                guard let modified = (try? fm.attributesOfItem(atPath: file))?[.modificationDate] as? Date, modified < cutoff else { continue }
                if (try? fm.removeItem(atPath: file)) != nil { removed += 1 }
            }
        }
        if removed > 0 {
            logger.info("removed temporary files other replicas abandoned", metadata: ["count": "\(removed)", "directory": "\(parent)"])
        }
    }

    /// A new, empty spool for `digest`.
    public func makeSpool(for digest: Digest) async throws(StorageError) -> Spool {
        let temp = "\(path)/\(digest.algorithm.rawValue)-\(digest.hex.prefix(16))-\(UUID().uuidString)"
        let pool = threadPool
        do {
            return try await pool.runIfActive { () throws in try Spool(digest: digest, path: temp, threadPool: pool) }
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError(.unavailable, operation: "create spool", cause: "\(error)")
        }
    }

    /// Bytes the spool directory's file system can still take.
    public func availableSpace() async -> UInt64? {
        let path = path
        return try? await threadPool.runIfActive { () -> UInt64? in
            var vfs = statvfs()
            guard statvfs(path, &vfs) == 0 else { return nil }
            return UInt64(vfs.f_bavail) * UInt64(vfs.f_frsize)
        }
    }

    /// Whether 64 KiB can be written and flushed in the directory now.
    public func probeWritable() async -> Bool {
        let probe = path + "/.write-probe"
        return (try? await threadPool.runIfActive { () -> Bool in
            let fd = Syscalls.open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard fd >= 0 else { return false }
            defer { close(fd); unlink(probe) }
            let bytes = [UInt8](repeating: 0, count: 64 << 10)
            let written = bytes.withUnsafeBytes { Syscalls.write(fd, $0.baseAddress!, $0.count) }
            return written == bytes.count && fsync(fd) == 0
        }) ?? false
    }
}
