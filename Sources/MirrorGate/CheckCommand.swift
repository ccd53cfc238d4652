import ArgumentParser
import MirrorGateConfig
import MirrorGateHTTP

/// `mirrorgate check`: validates the configuration and prints the routing plan.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the configuration and print the routing plan."
    )

    @OptionGroup var options: ConfigOptions

    func run() throws {
        do {
            let config = try ConfigLoader().load(file: options.config)
            print(config.routingPlan)
            print(Self.connectionNote(config.limits))
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}

extension CheckCommand {
    /// What `serve` would make of `limits.max_connections` under this machine's open-file
    /// limit (it raises the soft limit to the hard one first).
    static func connectionNote(_ limits: LimitsConfig) -> String {
        guard let files = OpenFileLimit.current() else { return "connections: at most \(limits.maxConnections) (open-file limit unknown)" }
        let affordable = OpenFileLimit.affordableConnections(
            configured: limits.maxConnections, openFiles: files.hard, maxConcurrentFetches: limits.maxConcurrentFetches)
        if affordable < limits.maxConnections {
            return "connections: limits.max_connections \(limits.maxConnections) would be lowered to \(affordable) here: the open-file limit is \(files.hard) (raise LimitNOFILE or ulimit -n)"
        }
        return "connections: at most \(limits.maxConnections) at once (the open-file limit here, \(files.hard), affords them)"
    }
}

func printError(_ message: String) {
    var stderr = StandardError()
    print(message, to: &stderr)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}

import Foundation
