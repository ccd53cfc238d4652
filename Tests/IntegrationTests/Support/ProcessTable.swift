#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The machine's processes as `/proc` shows them, for finding what a daemon under test
/// left running (containerd shims, dockerd's own containerd, podman's conmon).
public enum ProcessTable {
    /// Every process other than this one with its arguments (`/proc/<pid>/cmdline`);
    /// kernel threads, which have no arguments, are left out.
    public static func processes() -> [(pid: Int32, arguments: [String])] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard let pid = Int32(entry), pid != getpid(),
                  let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"), !data.isEmpty
            else { return nil }
            let arguments = data.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            return (pid, arguments)
        }
    }

    /// Whether `pid` is a zombie (or gone).
    public static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return true }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    /// The live (non-zombie) processes one of whose arguments starts with `prefix`,
    /// typically a test's temporary directory.
    public static func pids(withArgumentStartingWith prefix: String) -> [Int32] {
        processes().compactMap { pid, arguments in
            guard arguments.contains(where: { $0.hasPrefix(prefix) }), !isZombie(pid) else { return nil }
            return pid
        }
    }

    /// SIGKILLs every process ``pids(withArgumentStartingWith:)`` finds and waits up to
    /// `timeout` for them to be gone; returns the ids that were killed.
    @discardableResult
    public static func killAll(withArgumentStartingWith prefix: String, timeout: Duration = .seconds(10)) async -> [Int32] {
        let found = pids(withArgumentStartingWith: prefix)
        for pid in found { _ = kill(pid, SIGKILL) }
        let deadline = ContinuousClock.now + timeout
        while found.contains(where: { !isZombie($0) }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return found
    }
}
