import Crypto
import Foundation
import Testing

/// Issue 12 item 6: a graceful stop sends every in-flight response to its last byte, fails
/// `/readyz` at once, and keeps accepting connections for `shutdown.grace`.
@Suite(.serialized)
struct GracefulShutdownTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    @Test func sigtermDrainsSlowDownloadsAndKeepsAcceptingDuringTheGrace() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [32 << 20], layerFormat: .random)
        let layer = try #require(fixture.layers.first)
        let curl = try #require(ManagedProcess.which("curl"), "curl is not installed")
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/big")
            var config = GatewayConfig.upstreams([upstream.url])
            config.shutdownGrace = "2s"
            config.drainTimeout = "30s"
            let gateway = try await GatewayProcess.start(config)
            defer { Task { await gateway.stop() } }
            let url = "\(gateway.url)/v2/library/big/blobs/\(layer.digest)"
            let warm = try await HTTPFetch.get(url)
            #expect(warm.status == 200)

            let downloads = try TemporaryDirectory(prefix: "slow-downloads")
            // Eight clients at 6 MB/s each: about 5 s per 32 MiB, most of it after SIGTERM.
            let clients = Task {
                try await withThrowingTaskGroup(of: (Int, ManagedProcess.CommandResult).self) { group in
                    for index in 0..<8 {
                        group.addTask {
                            let result = try await ManagedProcess.run(curl, arguments: [
                                "-sS", "--limit-rate", "6M", "-o", downloads.appending("blob-\(index)").path, "-w", "%{http_code}", url,
                            ], timeout: .seconds(60))
                            return (index, result)
                        }
                    }
                    var results: [(Int, ManagedProcess.CommandResult)] = []
                    for try await result in group { results.append(result) }
                    return results
                }
            }
            try await Task.sleep(for: .seconds(1))
            gateway.kill(signal: SIGTERM)
            let stoppedAt = ContinuousClock.now

            // /readyz fails at once; new connections are still served during the grace.
            #expect(await eventually(timeout: .milliseconds(800), interval: .milliseconds(50)) {
                (try? await HTTPFetch.get("\(gateway.url)/readyz").status) == 503
            }, "/readyz did not fail at once")
            let during = try await HTTPFetch.get("\(gateway.url)/v2/")
            #expect(during.status == 200, "a new connection was refused during the grace period")
            #expect(ContinuousClock.now - stoppedAt < .seconds(2))

            // After it, the listener closes (soon after the 2 s, however loaded the machine).
            try await Task.sleep(until: stoppedAt + .milliseconds(2200))
            #expect(await eventually(timeout: .seconds(10), interval: .milliseconds(100)) {
                (try? await HTTPFetch.get("\(gateway.url)/v2/", timeout: .seconds(2))) == nil
            }, "the listener still accepts after the grace period")

            // Every download reaches its last byte, verified.
            let results = try await clients.value
            #expect(results.count == 8)
            for (index, result) in results {
                #expect(result.succeeded && result.stdoutText == "200", "client \(index): exit \(result.status) \(result.stderr)")
                let bytes = try Data(contentsOf: downloads.appending("blob-\(index)"))
                #expect(bytes.count == layer.size, "client \(index) got \(bytes.count) of \(layer.size) bytes")
                #expect("sha256:" + SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() == layer.digest)
            }
            #expect(await eventually(timeout: .seconds(20)) { !gateway.isRunning || gateway.exitStatus != nil })
            #expect(gateway.exitStatus == 0, "\(gateway.logTail())")
            #expect(!gateway.logText().contains("aborted="), "\(gateway.logTail())")
        }
    }
}
