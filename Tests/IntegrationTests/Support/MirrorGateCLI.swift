import Foundation

/// Runs the `mirrorgate` executable the tests use (``GatewayProcess/locateBinary()``) as a
/// one-shot command, e.g. `mirrorgate warm --url … IMAGE` or `mirrorgate status --url …`.
public enum MirrorGateCLI {
    /// Runs `mirrorgate <arguments>` to completion (stdout is a file, so never a terminal).
    public static func run(_ arguments: [String], timeout: Duration = .seconds(180)) async throws -> ManagedProcess.CommandResult {
        try await ManagedProcess.run(try GatewayProcess.locateBinary(), arguments: arguments, timeout: timeout)
    }

    /// Standard output and standard error of `result`, for failure messages.
    public static func output(_ result: ManagedProcess.CommandResult) -> String {
        "exit \(result.status)\(result.signaled ? " (signal)" : "")\n--- stdout ---\n\(result.stdoutText)--- stderr ---\n\(result.stderr)"
    }
}
