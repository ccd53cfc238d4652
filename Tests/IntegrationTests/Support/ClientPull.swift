/// The outcome of one `docker pull` or `podman pull`, with everything the client (and, for
/// dockerd, the daemon) said about it, so a test can assert on a failure's message.
///
/// The two clients report a mirror's error differently: podman's output names every
/// mirror that failed and why (`(Mirrors also failed: [127.0.0.1:PORT/docker.io/…:
/// reading manifest … manifest unknown …])`), while the docker CLI only prints the error
/// of the last endpoint dockerd tried — Docker Hub itself, after the mirror failed — and the
/// mirror's answer appears only in the daemon's log (`Attempting next endpoint for pull
/// after error: …`). ``daemonLog`` holds those lines.
public struct ClientPull: Sendable, CustomStringConvertible {
    /// The image reference as given to the client.
    public let reference: String
    /// The client's exit status.
    public let status: Int32
    /// Whether the client exited with status 0.
    public let succeeded: Bool
    /// The client's standard output followed by its standard error.
    public let output: String
    /// What the daemon logged while the pull ran (dockerd); empty for podman, which has
    /// no daemon.
    public let daemonLog: String

    /// Creates a record from a finished client command.
    public init(reference: String, result: ManagedProcess.CommandResult, daemonLog: String = "") {
        self.reference = reference
        self.status = result.status
        self.succeeded = result.succeeded
        self.output = result.stdoutText + result.stderr
        self.daemonLog = daemonLog
    }

    /// ``output`` and ``daemonLog`` together: where to look for a message whichever client
    /// printed it.
    public var combinedOutput: String { daemonLog.isEmpty ? output : output + "\n" + daemonLog }

    /// The reference, the status and everything printed, for failure messages.
    public var description: String {
        var text = "pull \(reference): status \(status)\n--- client output ---\n\(output)"
        if !daemonLog.isEmpty { text += "\n--- daemon log during the pull ---\n\(daemonLog)" }
        return text
    }
}
