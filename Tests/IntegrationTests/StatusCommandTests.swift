import Foundation
import Testing

/// `mirrorgate status` against a real gateway: upstreams in configured order per registry,
/// the cache's use after a pull, `--json`, and a clean failure when nothing listens.
@Suite(.serialized)
struct StatusCommandTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// Two registries, each with a dead and a live upstream (in opposite orders): the table
    /// lists them in configured order with aligned columns; after pulls the cache line shows
    /// what was stored against max_size, and the ghcr.io pull that skipped its dead first
    /// upstream is among the recent failovers.
    @Test func statusShowsUpstreamsInOrderTheCacheAndFailovers() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [512 << 10])
        let other = try ImageFixture.make(.ociImage, layerSizes: [128 << 10])
        let closedPort = try FreePort.allocate()
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/app")
            try await skopeo.push(other, to: upstream.hostPort, repository: "org/tool")
            var config = GatewayConfig(maxSize: "64MiB")
            config.setRegistry("docker.io", upstreams: [
                (name: "zeta-primary", url: upstream.url),
                (name: "alpha-backup", url: "http://127.0.0.3:\(closedPort)"),
            ])
            config.setRegistry("ghcr.io", upstreams: [
                (name: "ghcr-dead", url: "http://127.0.0.3:\(closedPort)"),
                (name: "ghcr-mirror", url: upstream.url),
            ])
            try await GatewayProcess.with(config) { gateway in
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: fixture.tag)
                #expect(pulled.allDigests == fixture.allDigests)
                let pulledOther = try await skopeo.pull(from: gateway.hostPort, repository: "ghcr.io/org/tool", reference: other.tag)
                #expect(pulledOther.allDigests == other.allDigests)
                let stored = fixture.allDigests.count + other.allDigests.count
                let cache = CacheInspection(gateway)
                let recorded = await eventually(timeout: .seconds(10)) {
                    (try? await cache.objectRows().count) == stored
                }
                #expect(recorded, "the pull's objects were not all recorded")

                let result = try await MirrorGateCLI.run(["status", "--url", gateway.url], timeout: .seconds(60))
                let output = MirrorGateCLI.output(result)
                #expect(result.succeeded, "\(output)")
                let lines = result.stdoutText.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                #expect(lines.first?.hasPrefix("MirrorGate \(gateway.url)  up ") == true, "\(output)")
                func index(_ predicate: (String) -> Bool) -> Int? { lines.firstIndex(where: predicate) }

                // Registries and their upstreams in configuration order, not alphabetical.
                let docker = try #require(index { $0 == "registry docker.io" }, "\(output)")
                let primary = try #require(index { $0.hasPrefix("  1  zeta-primary ") && $0.contains(upstream.url) }, "\(output)")
                let backup = try #require(index { $0.hasPrefix("  2  alpha-backup ") && $0.contains("http://127.0.0.3:\(closedPort)") }, "\(output)")
                let ghcr = try #require(index { $0 == "registry ghcr.io" }, "\(output)")
                let ghcrDead = try #require(index { $0.hasPrefix("  1  ghcr-dead ") }, "\(output)")
                let ghcrMirror = try #require(index { $0.hasPrefix("  2  ghcr-mirror ") }, "\(output)")
                #expect(docker < primary && primary < backup && backup < ghcr && ghcr < ghcrDead && ghcrDead < ghcrMirror, "\(output)")
                let header = try #require(lines.first { $0.contains("UPSTREAM") })
                for column in ["URL", "HEALTH", "CIRCUIT", "BUDGET", "RESETS", "LAST ERROR"] {
                    #expect(header.contains(column), "missing column \(column): \(header)")
                }
                // Aligned: every URL starts in the same column as its header.
                let urlColumn = try #require(header.range(of: "URL")).lowerBound.utf16Offset(in: header)
                #expect(lines[primary].range(of: upstream.url)?.lowerBound.utf16Offset(in: lines[primary]) == urlColumn, "\(output)")
                #expect(lines[backup].range(of: "http://127.0.0.3:\(closedPort)")?.lowerBound.utf16Offset(in: lines[backup]) == urlColumn, "\(output)")
                #expect(lines[primary].contains("healthy"), "\(output)")

                // The cache: what the pull stored, against max_size.
                let used = try #require(lines.first { $0.hasPrefix("  used ") }, "\(output)")
                #expect(used.contains(" of 64.0 MiB ("), "\(used)")
                let objects = try #require(lines.first { $0.hasPrefix("  objects ") }, "\(output)")
                let count = Int(objects.split(separator: " ").last ?? "")
                #expect(count == stored, "\(objects) vs \(cache.blobFiles())")
                let hits = try #require(lines.first { $0.hasPrefix("  hit ratio ") }, "\(output)")
                #expect(hits.contains("misses"), "\(hits)")
                #expect(lines.contains { $0.hasPrefix("  writable ") && $0.hasSuffix("yes") }, "\(output)")
                let failovers = try #require(index { $0.hasPrefix("recent failovers") }, "\(output)")
                let tagRow = lines[failovers...].first { $0.contains(" ghcr.io ") && $0.contains(" org/tool:\(other.tag) ") }
                #expect(tagRow?.contains(" ghcr-mirror ") == true, "no failover row for the tag: \(output)")
                #expect(tagRow?.contains("ghcr-dead") == true, "the skipped upstream is not named: \(output)")
                #expect(!result.stdoutText.contains("\u{1B}["), "colour codes in non-terminal output")

                // --json is the gateway's document.
                let json = try await MirrorGateCLI.run(["status", "--json", "--url", gateway.url], timeout: .seconds(60))
                #expect(json.succeeded, "\(MirrorGateCLI.output(json))")
                let object = try #require(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any])
                let registries = try #require(object["registries"] as? [[String: Any]])
                #expect(registries.compactMap { $0["registry"] as? String } == ["docker.io", "ghcr.io"])
                #expect(object["cache"] is [String: Any])
            }
        }
    }

    @Test func statusFailsCleanlyWhenNothingListens() async throws {
        let port = try FreePort.allocate()
        let result = try await MirrorGateCLI.run(["status", "--url", "http://127.0.0.1:\(port)"], timeout: .seconds(60))
        let output = MirrorGateCLI.output(result)
        #expect(!result.signaled && result.status == 1, "\(output)")
        #expect(result.stderr.contains("error: cannot reach the gateway at http://127.0.0.1:\(port)"), "\(output)")
        #expect(result.stdoutText.isEmpty, "\(output)")
    }

    @Test func statusRejectsAURLThatIsNotHTTP() async throws {
        let result = try await MirrorGateCLI.run(["status", "--url", "ftp://127.0.0.1:1"], timeout: .seconds(60))
        #expect(!result.signaled && result.status == 1, "\(MirrorGateCLI.output(result))")
        #expect(result.stderr.contains("invalid --url"), "\(MirrorGateCLI.output(result))")
    }
}
