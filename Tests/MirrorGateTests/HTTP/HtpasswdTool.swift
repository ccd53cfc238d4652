import Foundation

/// Apache's `htpasswd` (package apache2-utils), which the README tells users to run: test
/// fixtures are its real output (`$2y$` entries), not hashes made by the gateway's own library.
enum HtpasswdTool {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// One `user:$2y$…` line, as `htpasswd -nbB -C <cost> user password` prints it.
    static func line(_ user: String, _ password: String, cost: Int = 5) throws -> String {
        let candidates = ["/usr/bin/htpasswd", "/usr/local/bin/htpasswd", "/usr/sbin/htpasswd"]
        guard let tool = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw Failure(description: "htpasswd is not installed (apt-get install apache2-utils; make test does)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["-nbB", "-C", String(cost), user, password]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let line = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, line.hasPrefix("\(user):$2y$") else {
            throw Failure(description: "htpasswd -nbB \(user) failed (status \(process.terminationStatus)): \(line)")
        }
        return line
    }

    /// A file of `users` (name, password) in `htpasswd -B` format, with a comment and a blank line.
    static func file(_ users: [(String, String)], cost: Int = 5) throws -> String {
        "# made by htpasswd -nbB\n" + (try users.map { try line($0.0, $0.1, cost: cost) }).joined(separator: "\n\n") + "\n"
    }
}
