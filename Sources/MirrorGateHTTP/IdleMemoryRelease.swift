import Logging
import ServiceLifecycle

/// Gives freed memory back to the system once the gateway has gone quiet after work.
///
/// glibc keeps memory that was freed inside its arenas (see ``SystemAllocator``), so after a
/// burst of clients the idle process stays as large as the burst made it. Every ``interval``
/// this looks at how much CPU the process used; the first interval in which it used almost
/// none (below ``idleShare`` of one core) after one that was busy, it calls
/// ``SystemAllocator/releaseFreeMemory()``. Being idle is read from the CPU clock rather than
/// from request counts, so the request path carries no bookkeeping for it, and background
/// work (fetches that outlive their client, the janitor) counts as work too.
public struct IdleMemoryRelease: Service {
    /// How often the CPU clock is read.
    public static let interval = Duration.seconds(10)
    /// Share of one core under which an interval counts as idle. An idle gateway uses about
    /// 0.1 % (health probes); serving even a few requests a second costs more than 1 %.
    public static let idleShare = 0.01

    /// When to release: a pure function of the CPU time used in each interval.
    public struct Policy: Sendable, Equatable {
        /// CPU time per interval below which the process counts as idle.
        public let idleCPU: Duration
        /// Whether the process has worked since memory was last released (start-up counts).
        public private(set) var workedSinceRelease = true

        public init(interval: Duration = IdleMemoryRelease.interval, idleShare: Double = IdleMemoryRelease.idleShare) {
            idleCPU = interval * idleShare
        }

        /// Takes the CPU time used in the interval that just ended; true when memory should be
        /// released now: once per quiet spell, at its start, and only after some work.
        public mutating func observe(cpuUsed: Duration) -> Bool {
            if cpuUsed >= idleCPU {
                workedSinceRelease = true
                return false
            }
            guard workedSinceRelease else { return false }
            workedSinceRelease = false
            return true
        }
    }

    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func run() async throws {
        // Without glibc there is nothing to release; the service just waits for the stop.
        guard SystemAllocator.canReleaseMemory, var last = SystemAllocator.processCPUTime() else {
            try? await gracefulShutdown()
            return
        }
        var policy = Policy()
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.interval) }
            } catch {
                return
            }
            guard let now = SystemAllocator.processCPUTime() else { return }
            let used = now - last
            last = now
            guard policy.observe(cpuUsed: used) else { continue }
            let before = SystemAllocator.residentBytes()
            let started = ContinuousClock.now
            SystemAllocator.releaseFreeMemory()
            let took = ContinuousClock.now - started
            // The release's own CPU time is not work to release after.
            last = SystemAllocator.processCPUTime() ?? last
            if let before, let after = SystemAllocator.residentBytes() {
                logger.debug("idle: freed memory given back to the system", metadata: [
                    "rss_mib_before": "\(before >> 20)", "rss_mib_after": "\(after >> 20)", "took": "\(took)",
                ])
            }
        }
    }
}
