import Foundation

/// The mounts of this process's mount namespace (`/proc/self/mountinfo`), for checking
/// that a daemon under test left nothing mounted in its temporary directory.
public enum MountTable {
    /// Mount points at or under `directory`.
    public static func mountPoints(under directory: URL) -> [String] {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
        let root = directory.standardizedFileURL.path
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { return nil }
            // The mount point is field 5, with spaces etc. as octal escapes.
            let mountPoint = String(fields[4]).replacingOccurrences(of: "\\040", with: " ")
            return mountPoint == root || mountPoint.hasPrefix(root + "/") ? mountPoint : nil
        }
    }

    /// Lazily unmounts (`umount -l`) everything under `directory`, deepest first.
    public static func unmountAll(under directory: URL) async {
        let umount = ManagedProcess.which("umount") ?? URL(fileURLWithPath: "/bin/umount")
        for mountPoint in mountPoints(under: directory).sorted(by: { $0.count > $1.count }) {
            _ = try? await ManagedProcess.run(umount, arguments: ["-l", mountPoint], timeout: .seconds(10))
        }
    }
}
