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
        let client: GatewayClient
        do {
            client = try GatewayClient(baseURL: url)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let fetched: Result<Data, any Error>
        do {
            fetched = .success(try await client.statusDocument())
        } catch {
            fetched = .failure(error)
        }
        await client.shutdown()
        let document: Data
        switch fetched {
        case .success(let data):
            document = data
        case .failure(let error):
            printError("error: \(error)")
            throw ExitCode(1)
        }
        if json {
            let text = String(decoding: document, as: UTF8.self)
            Terminal.standardOutput.write(text.hasSuffix("\n") ? text : text + "\n")
            return
        }
        let status: GatewayStatus
        do {
            status = try GatewayStatus.decoder.decode(GatewayStatus.self, from: document)
        } catch {
            printError("error: \(url)/_mirrorgate/status.json is not a MirrorGate status document: \(error)")
            throw ExitCode(1)
        }
        let terminal = Terminal.standardOutput
        terminal.write(StatusTable(status: status, source: url, terminal: terminal).render())
    }
}
