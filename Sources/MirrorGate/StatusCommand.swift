import ArgumentParser
import Foundation
import MirrorGateCore

/// `mirrorgate status`: what the status page shows, as a terminal table, from a running
/// gateway's `/_mirrorgate/status.json`.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a running gateway's upstreams, cache and recent failovers.",
        discussion: """
            Reads GET /_mirrorgate/status.json from the gateway at --url and prints each registry's \
            upstreams in order (health, circuit, budget and reset time, last error), the cache (use \
            against storage.max_size, objects, hit ratio, writability) and the recent failovers. \
            Exits with status 1 when the gateway cannot be reached.
            """
    )

    @Option(name: .long, help: "The gateway's base URL (its admin_listen address when admin_listen is set and auth is off: the status is served only there).")
    var url: String = "http://127.0.0.1:5000"

    @Flag(name: .long, help: "Print the status document as JSON instead of a table.")
    var json = false

    func run() async throws {
        guard let status = try await GatewayClient.commandDocument(
            url: url, json: json, path: "/_mirrorgate/status.json", kind: "a MirrorGate status document",
            fetch: { try await $0.statusDocument() },
            decode: { try GatewayStatus.decoder.decode(GatewayStatus.self, from: $0) })
        else { return }
        let terminal = Terminal.standardOutput
        terminal.write(StatusTable(status: status, source: url, terminal: terminal).render())
    }
}
