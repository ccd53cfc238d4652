import Foundation

/// A fresh directory under the system temporary directory that deletes itself.
///
/// The directory is removed by ``remove()`` or, as a safety net, when the last
/// reference goes away. Set `MIRRORGATE_KEEP_TMP=1` in the environment to keep every
/// temporary directory for post-mortem debugging (its path is in the test logs).
public final class TemporaryDirectory: Sendable {
    /// The directory's location.
    public let url: URL
    /// Whether the directory is kept on disk when this object goes away.
    public let keep: Bool

    /// Creates a new, empty directory named `<prefix>-<random>` in the temporary directory.
    public init(prefix: String = "mirrorgate-it") throws {
        let base = URL(fileURLWithPath: NSTemporaryDirectory(), isDirectory: true)
        let name = "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
        url = base.appendingPathComponent(name, isDirectory: true)
        keep = ProcessInfo.processInfo.environment["MIRRORGATE_KEEP_TMP"] == "1"
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// The directory's path as a string.
    public var path: String { url.path }

    /// Returns `url/component`, creating nothing.
    public func appending(_ component: String, isDirectory: Bool = false) -> URL {
        url.appendingPathComponent(component, isDirectory: isDirectory)
    }

    /// Creates (if needed) and returns the subdirectory `url/component`.
    public func subdirectory(_ component: String) throws -> URL {
        let sub = url.appendingPathComponent(component, isDirectory: true)
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        return sub
    }

    /// Deletes the directory and everything in it (unless ``keep`` is set). Idempotent.
    public func remove() {
        guard !keep else { return }
        try? FileManager.default.removeItem(at: url)
    }

    deinit { remove() }
}
