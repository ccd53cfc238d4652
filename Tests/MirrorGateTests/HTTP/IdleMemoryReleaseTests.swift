@testable import MirrorGateHTTP
import Testing

@Suite("IdleMemoryRelease")
struct IdleMemoryReleaseTests {
    /// 10 s intervals, idle below 1 % of a core: 100 ms of CPU.
    static let busy = Duration.milliseconds(100)
    static let quiet = Duration.milliseconds(99)

    @Test func releasesOnceAtTheStartOfEachQuietSpellAfterWork() {
        var policy = IdleMemoryRelease.Policy(interval: .seconds(10), idleShare: 0.01)
        #expect(policy.idleCPU == .milliseconds(100))
        let used: [Duration] = [
            Self.quiet, Self.quiet, .zero,  // start-up allocated too: the first quiet interval releases, once
            .seconds(9), Self.busy,  // load: never while it lasts
            .milliseconds(4), .milliseconds(4), .milliseconds(4),  // once when it stops
        ]
        let released = used.map { policy.observe(cpuUsed: $0) }
        #expect(released == [true, false, false, false, false, true, false, false])
    }

    @Test func steadyLoadNeverReleases() {
        var policy = IdleMemoryRelease.Policy(interval: .seconds(10), idleShare: 0.01)
        let released = (0..<100).map { _ in policy.observe(cpuUsed: .milliseconds(150)) }
        #expect(!released.contains(true))
        #expect(policy.workedSinceRelease)
    }

    @Test func theProcessClocksAreReadable() throws {
        // The service relies on both; on Linux (glibc) they must answer.
        #if os(Linux)
        let cpu = try #require(SystemAllocator.processCPUTime())
        #expect(cpu > .zero)
        let rss = try #require(SystemAllocator.residentBytes())
        #expect(rss > 1 << 20)
        #expect(SystemAllocator.canReleaseMemory)
        #endif
    }
}
