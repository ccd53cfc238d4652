import ArgumentParser
import Foundation
import MirrorGateConfig
import MirrorGateStorage

extension PullReport.Grouping: ExpressibleByArgument {}

/// `mirrorgate report`: who pulled what through a running gateway and what it cost, from its
/// `/_mirrorgate/report.json`.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Show who pulled what through a running gateway, and what it cost.",
        discussion: """
            Reads GET /_mirrorgate/report.json from the gateway at --url and prints one row per \
            repository (registry/name), client (user or address, with the client kind) or upstream \
            (what answered: an upstream, or cache): pulls (client manifest GETs, as Docker Hub \
            counts them; a HEAD is a check, not a pull), distinct digests, upstream manifest GETs \
            spent per upstream, pulls served without spending any quota, and the last pull. \
            Exits with status 1 when the gateway cannot be reached.
            """
    )

    @Option(name: .long, help: "The gateway's base URL (its admin_listen address when admin_listen is set and auth is off).")
    var url: String = "http://127.0.0.1:5000"

    @Option(name: .long, help: "How far back: 30m, 24h, 7d…")
    var since: String = "24h"

    @Option(name: .long, help: "One row per repository, client or upstream.")
    var by: PullReport.Grouping = .repository

    @Flag(name: .long, help: "Print the report as JSON (the report.json document).")
    var json = false

    @Flag(name: .long, help: "Print the report as CSV.")
    var csv = false

    func validate() throws {
        guard !(json && csv) else { throw ValidationError("choose one of --json and --csv") }
        do {
            let duration = try ConfigValues.parseDuration(since)
            guard duration > .zero else { throw ValidationError("--since must be longer than 0") }
        } catch let error as ValueParseError {
            throw ValidationError("--since: \(error.message)")
        }
    }

    func run() async throws {
        guard let report = try await GatewayClient.commandDocument(
            url: url, json: json, path: "/_mirrorgate/report.json", kind: "a MirrorGate report",
            fetch: { try await $0.reportDocument(since: since, by: by.rawValue) },
            decode: { try PullReport.decoder.decode(PullReport.self, from: $0) })
        else { return }
        let terminal = Terminal.standardOutput
        terminal.write(csv ? ReportTable.csv(report) : ReportTable(report: report, source: url, window: since, terminal: terminal).render())
    }
}
