#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's open-file limit (`RLIMIT_NOFILE`), and the connection cap it affords.
public enum OpenFileLimit {
    /// The soft and hard limits.
    public struct Limits: Sendable, Equatable {
        public var soft: UInt64
        public var hard: UInt64
    }

    /// Connections the admin listener keeps open at most (probes and scrapes need few).
    public static let adminConnections = 64

    /// The current limits, or nil if they cannot be read.
    public static func current() -> Limits? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return nil }
        return Limits(soft: UInt64(limit.rlim_cur), hard: UInt64(limit.rlim_max))
    }

    /// Raises the soft limit to the hard one (a container's soft limit is often 1024, about
    /// 1000 sockets). Returns the limits before and after.
    public static func raiseSoftToHard() -> (before: Limits, after: Limits)? {
        guard let before = current() else { return nil }
        guard before.soft < before.hard else { return (before, before) }
        var limit = rlimit()
        limit.rlim_max = rlim_t(before.hard)
        // An unlimited hard limit is not a valid soft one for descriptors.
        limit.rlim_cur = before.hard == UInt64(rlim_t.max) ? rlim_t(1 << 20) : rlim_t(before.hard)
        _ = setrlimit(resource, &limit)
        return (before, current() ?? before)
    }

    /// The number of client connections `openFiles` descriptors afford: `configured`, or less.
    ///
    /// A connection may hold two descriptors (its socket, and a cached blob's file or an
    /// upstream socket); the rest is kept for the process itself (event loops, SQLite, logs,
    /// libdispatch's `/proc` reads, which trap when they fail), the admin listener and the
    /// blob fetches (an upstream socket, a temporary file and a reader each).
    public static func affordableConnections(configured: Int, openFiles: UInt64, maxConcurrentFetches: Int) -> Int {
        let reserve = 64 + adminConnections + 3 * maxConcurrentFetches
        let spare = Int(clamping: openFiles) - reserve
        return max(1, min(configured, spare / 2))
    }

    #if canImport(Glibc)
    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let resource = RLIMIT_NOFILE
    #endif
}
