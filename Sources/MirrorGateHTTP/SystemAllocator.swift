import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Settings of glibc's malloc, and the call that gives freed memory back to the system.
///
/// Why: Swift, NIO and SQLite allocate through the C allocator, and glibc keeps much of what a
/// process frees. After 200 clients read a cached 64 MiB blob at once, the idle gateway kept
/// 219 MiB of anonymous memory resident while malloc counted 2.8 MiB in use; `malloc_trim(0)`
/// brought it to 7 MiB. Nothing leaked (the count in use stayed at 2.6-2.8 MiB over 350,000 requests);
/// two habits of glibc's malloc kept the memory:
///
/// - The dynamic mmap threshold. Blocks of 128 KiB and more start out as their own mappings,
///   which `free` unmaps. But the first time such a block is freed, glibc raises the threshold
///   to its size, so from then on the 256 KiB body buffers of every blob response come from the
///   arenas, and stay there, free but resident, after the burst. Setting the threshold fixes it
///   where it is (and stops the adjustment), so those buffers stay mappings of their own.
/// - Arenas: up to 8 per core, each holding on to its own free memory, and giving back only
///   what is free at its top. Fewer arenas spread less; ``releaseFreeMemory()`` returns the
///   free pages inside them too, and is called when the gateway is idle
///   (``IdleMemoryRelease``).
///
/// `<malloc.h>` is not part of Swift's Glibc module, so the two functions are looked up by name
/// (no C target for two calls). With another C library (musl, Darwin) everything here does
/// nothing, and a variable the operator set (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`,
/// `GLIBC_TUNABLES=glibc.malloc.…`) wins over the defaults below.
public enum SystemAllocator {
    /// Arenas at most: one per core, at least two. glibc's default is 8 per core.
    public static var arenaLimit: Int { max(2, System.coreCount) }
    /// Allocations of this size and larger get a mapping of their own (glibc's initial value).
    public static let mmapThreshold = 128 << 10

    /// Applies the settings above. Call it first thing when serving: glibc settles its arena
    /// limit once threads have made arenas of their own, so this must come before the event
    /// loops and thread pools start.
    public static func configure() {
        #if canImport(Glibc)
        guard let mallopt = function("mallopt", as: (@convention(c) (Int32, Int32) -> Int32).self) else { return }
        if !operatorSet("MALLOC_ARENA_MAX", tunable: "glibc.malloc.arena_max") {
            _ = mallopt(-8, Int32(arenaLimit))  // M_ARENA_MAX
        }
        if !operatorSet("MALLOC_MMAP_THRESHOLD_", tunable: "glibc.malloc.mmap_threshold") {
            _ = mallopt(-3, Int32(mmapThreshold))  // M_MMAP_THRESHOLD
        }
        #endif
    }

    /// Whether ``releaseFreeMemory()`` can do anything with this C library.
    public static var canReleaseMemory: Bool {
        #if canImport(Glibc)
        return function("malloc_trim", as: (@convention(c) (Int) -> Int32).self) != nil
        #else
        return false
        #endif
    }

    /// Returns the free pages of every arena to the system (`malloc_trim(0)`). It walks all
    /// free memory under each arena's lock, so it is for idle moments, not the request path.
    public static func releaseFreeMemory() {
        #if canImport(Glibc)
        _ = function("malloc_trim", as: (@convention(c) (Int) -> Int32).self)?(0)
        #endif
    }

    /// CPU time the whole process has used (every thread, user and system).
    public static func processCPUTime() -> Duration? {
        #if canImport(Glibc)
        var now = timespec()
        guard clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now) == 0 else { return nil }
        return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
        #else
        return nil
        #endif
    }

    /// Resident memory of the process, from `/proc/self/statm`; nil where there is none.
    public static func residentBytes() -> Int? {
        #if canImport(Glibc)
        guard let file = fopen("/proc/self/statm", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 128)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let fields = text.split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return nil }
        return pages * sysconf(Int32(_SC_PAGESIZE))
        #else
        return nil
        #endif
    }

    #if canImport(Glibc)
    /// A C function of the C library, found by name in the process's global symbols.
    private static func function<F>(_ name: String, as type: F.Type) -> F? {
        guard let handle = dlopen(nil, RTLD_NOW) else { return nil }
        defer { dlclose(handle) }
        guard let symbol = dlsym(handle, name) else { return nil }
        return unsafeBitCast(symbol, to: type)
    }

    private static func operatorSet(_ variable: String, tunable: String) -> Bool {
        if getenv(variable) != nil { return true }
        guard let tunables = getenv("GLIBC_TUNABLES") else { return false }
        return String(cString: tunables).contains(tunable)
    }
    #endif
}
