import Foundation
import Testing

/// Issue 12 item 6: the memory a burst of clients needed is given back when they are gone.
///
/// Each client of a cached blob holds up to four 256 KiB buffers in the gateway while it reads.
/// glibc's malloc used to keep all of them after the burst (its mmap threshold rose past their
/// size, so they came from its arenas and stayed there). How much memory the gateway keeps
/// over time under load is measured in `benchmarks/run` (workload 7); this checks only that a
/// burst's memory goes back. On a plain-HTTP listener a cached blob goes out with `sendfile`
/// and holds no buffers, so the burst runs against a TLS listener, which reads and writes them.
@Suite(.serialized)
struct MemoryReleaseTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    static let MiB = 1 << 20

    /// A field of `/proc/PID/status` in bytes (`RssAnon`, `VmRSS`, ...).
    static func status(_ pid: Int32, _ field: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
              let kib = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        return kib * 1024
    }

    @Test func memoryOfABurstOfSlowClientsIsGivenBack() async throws {
        #if os(Linux)
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [16 * Self.MiB], layerFormat: .random)
        let layer = try #require(fixture.layers.first)
        let curl = try #require(ManagedProcess.which("curl"), "curl is not installed")
        let skopeo = skopeo
        let openssl = try #require(ManagedProcess.which("openssl"))
        let files = try TemporaryDirectory(prefix: "burst-tls")
        let cert = files.appending("cert.pem"), key = files.appending("key.pem")
        let made = try await ManagedProcess.run(openssl, arguments: [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=mirrorgate-test",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key.path, "-out", cert.path,
        ])
        #expect(made.status == 0, "\(made.stderr)")
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/burst")
            var config = GatewayConfig.upstreams([upstream.url])
            config.extraYAML = "tls: {cert: \"\(cert.path)\", key: \"\(key.path)\"}\n"
            try await GatewayProcess.with(config) { gateway in
                let url = "\(gateway.url)/v2/library/burst/blobs/\(layer.digest)"
                let warm = try await ManagedProcess.run(curl, arguments: ["-sS", "-f", "--cacert", cert.path, "-o", "/dev/null", url])
                #expect(warm.status == 0, "\(warm.stderr)")
                let pid = try #require(gateway.pid)
                let before = try #require(Self.status(pid, "RssAnon"))

                // 64 clients reading 1 MB/s each for 3 s: their responses wait on full sockets,
                // each with its buffers in the gateway.
                let clients = Task {
                    try await withThrowingTaskGroup(of: ManagedProcess.CommandResult.self) { group in
                        for _ in 0..<64 {
                            group.addTask {
                                try await ManagedProcess.run(curl, arguments: [
                                    "-sS", "--cacert", cert.path, "--limit-rate", "1M", "--max-time", "3", "-o", "/dev/null", url,
                                ], timeout: .seconds(30))
                            }
                        }
                        var results: [ManagedProcess.CommandResult] = []
                        for try await result in group { results.append(result) }
                        return results
                    }
                }
                try await Task.sleep(for: .seconds(2))
                let during = try #require(Self.status(pid, "RssAnon"))
                let results = try await clients.value
                // 28: curl stopped at --max-time, as intended; anything else is a failed client.
                #expect(results.allSatisfy { !$0.signaled && ($0.status == 28 || $0.status == 0) },
                        "a client failed: \(results.map(\.stderr).filter { !$0.isEmpty }.prefix(3))")
                #expect(during - before > 32 * Self.MiB,
                        "the burst did not use the memory this test is about (\(before / Self.MiB) → \(during / Self.MiB) MiB)")

                // Given back: at once for the body buffers, the rest when the gateway is idle
                // (it looks every 10 s).
                var after = during
                let released = await eventually(timeout: .seconds(30), interval: .milliseconds(500)) {
                    after = Self.status(pid, "RssAnon") ?? after
                    return after < before + 16 * Self.MiB
                }
                #expect(released, """
                    anonymous memory stayed at \(after / Self.MiB) MiB after the burst \
                    (\(before / Self.MiB) MiB before it, \(during / Self.MiB) MiB during it)
                    """)
            }
        }
        #endif
    }
}
