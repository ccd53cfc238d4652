import ArgumentParser
import Foundation
import RegistryModel

/// `mirrorgate warm`: pulls images through a running gateway so that its cache holds them,
/// verifying every blob's digest on the way.
struct WarmCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warm",
        abstract: "Pull images through a running gateway into its cache.",
        discussion: """
            Each IMAGE is written as for docker pull: alpine, alpine:3.20, library/alpine@sha256:…, \
            ghcr.io/org/app:tag, registry.example.com:5000/x/y:z. Names without a registry are Docker Hub \
            names. The registry must be configured on the gateway. Every platform of a multi-platform \
            image is fetched unless --platform is given. Blobs are streamed, checked against their \
            digests and discarded. Exits with status 1 if any image failed.
            """
    )

    @Option(name: .long, help: "The gateway's base URL.")
    var url: String = "http://127.0.0.1:5000"

    @Option(name: .long, help: "Only this platform of multi-platform images: os/arch or os/arch/variant (e.g. linux/arm64).")
    var platform: String?

    @Option(name: .long, help: "Blobs fetched at once per image.")
    var concurrency: Int = 4

    @Argument(help: "The images to warm.")
    var images: [String]

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one IMAGE") }
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 64") }
        if let platform {
            do { _ = try ImagePlatform(parsing: platform) } catch { throw ValidationError(error.message) }
        }
    }

    func run() async throws {
        let terminal = Terminal.standardOutput
        let client = try GatewayClient.forCommand(url: url)
        let selected = try platform.map { try ImagePlatform(parsing: $0) }
        let warmer = ImageWarmer(client: client, platform: selected, concurrency: concurrency)
        let started = ContinuousClock.now
        var outcomes: [ImageWarmer.Outcome] = []
        for text in images {
            let progress = ProgressBar(label: text)
            let outcome: ImageWarmer.Outcome
            do {
                let image = try ImageReference(parsing: text)
                let ticker = terminal.isTTY ? Task {
                    while !Task.isCancelled {
                        terminal.redraw(progress.render(width: terminal.width))
                        try? await Task.sleep(for: .milliseconds(200))
                    }
                } : nil
                outcome = await warmer.warm(image, progress: progress)
                ticker?.cancel()
                _ = await ticker?.value
                terminal.clearLine()
            } catch {
                var failed = ImageWarmer.Outcome(label: text)
                failed.failure = "invalid image reference: \(error.message)"
                outcome = failed
            }
            outcomes.append(outcome)
            terminal.line(Self.line(outcome, terminal: terminal))
        }
        await client.shutdown()

        let warmed = outcomes.filter { $0.failure == nil }
        let bytes = outcomes.reduce(UInt64(0)) { $0 + $1.bytes }
        let elapsed = ContinuousClock.now - started
        terminal.line("warmed \(warmed.count) of \(outcomes.count) images, \(HumanFormat.mebibytes(bytes)) in \(HumanFormat.duration(elapsed.seconds))")
        if warmed.count != outcomes.count { throw ExitCode(1) }
    }

    /// `ok  IMAGE  N blobs  X MiB  Y MiB/s  (digest)` or `FAILED IMAGE: reason`.
    static func line(_ outcome: ImageWarmer.Outcome, terminal: Terminal) -> String {
        if let failure = outcome.failure {
            return terminal.paint("FAILED", .red) + " \(outcome.label): \(failure)"
        }
        return terminal.paint("ok", .green)
            + "  \(outcome.label)  \(outcome.blobs) blobs  \(HumanFormat.mebibytes(outcome.bytes))"
            + "  \(HumanFormat.rate(bytes: outcome.bytes, over: outcome.duration))  (\(outcome.digest.map(\.description) ?? "-"))"
    }
}
