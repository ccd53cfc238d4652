import ArgumentParser
import MirrorGateConfig

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
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
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
