import Foundation
import Testing

/// Runs `benchmarks/run --smoke` (tiny sizes, one iteration, 1 s wrk runs) against the gateway
/// binary the suite uses, so the benchmark harness cannot rot: every workload must produce a
/// numeric row for every system, and the chart must be a PNG. No figure is judged here;
/// performance claims live in benchmarks/results/.
///
/// Needs `docker-registry`, `skopeo`, `nginx` (nginx-light), `wrk`, matplotlib
/// (python3-matplotlib), `moto_server` (workload 8) and PostgreSQL 15 (postgresql-15, workload 9);
/// `make test` installs them.
@Suite(.serialized)
struct BenchmarkSmokeTests {
    /// The systems each workload must report (workload 5 is measured during 1 and 2).
    static let expected: [Int: Set<String>] = [
        1: ["mirrorgate", "distribution", "nginx", "mirrorgate-tls"],
        2: ["mirrorgate", "distribution", "nginx"],
        3: ["mirrorgate", "distribution"],
        4: ["mirrorgate", "distribution"],
        5: ["mirrorgate", "distribution", "nginx", "mirrorgate-tls"],
        6: ["mirrorgate", "mirrorgate-norefresh", "mirrorgate-ttl0", "distribution"],
        7: ["mirrorgate", "distribution"],
        8: ["mirrorgate-s3", "mirrorgate-s3-redirect"],
        9: ["mirrorgate", "mirrorgate-replicas"],
    ]

    @Test func smokeRunReportsEveryWorkloadForEverySystem() async throws {
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // IntegrationTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // package root
        let out = try TemporaryDirectory(prefix: "mirrorgate-bench-smoke")
        // The harness's own temp dir (server configs, caches, logs) goes under here, so the test
        // can tell afterwards that it removed it and that none of its servers is left running.
        let scratch = try out.subdirectory("tmp")
        let binary = try GatewayProcess.locateBinary()
        let run = try ManagedProcess(
            name: "benchmarks/run",
            executable: root.appendingPathComponent("benchmarks/run"),
            arguments: ["--smoke", "--out", out.path],
            environment: ["MIRRORGATE_BIN": binary.path, "TMPDIR": scratch.path],
            workingDirectory: root,
            stdoutLog: out.appending("run.log"))
        let finished = await run.waitForExit(timeout: .seconds(300))
        if !finished { await run.stop() }
        #expect(finished, "benchmarks/run --smoke did not finish in 150 s")
        #expect(run.exitStatus == 0, "benchmarks/run --smoke failed:\n\(run.logTail(lines: 30))")

        let files = try FileManager.default.contentsOfDirectory(atPath: out.path)
        let report = try #require(files.first { $0.hasSuffix(".md") }, "no report in \(files)")
        let chart = try #require(files.first { $0.hasSuffix(".png") }, "no chart in \(files)")
        let png = try Data(contentsOf: out.appending(chart))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "the chart is not a PNG")
        #expect(png.count > 10_000, "the chart is suspiciously small (\(png.count) bytes)")

        // "| workload | system | variant | metric | median | min | max | n |" rows of "All medians".
        let text = try String(contentsOf: out.appending(report), encoding: .utf8)
        let allMedians = try #require(text.components(separatedBy: "## All medians").last)
        var seen: [Int: Set<String>] = [:]
        for line in allMedians.split(separator: "\n") where line.hasPrefix("| ") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == 8, let workload = Int(cells[0]) else { continue }
            #expect(Double(cells[4]) != nil && Double(cells[5]) != nil && Double(cells[6]) != nil, "not numeric: \(line)")
            seen[workload, default: []].insert(cells[1])
        }
        for (workload, systems) in Self.expected {
            let missing = systems.subtracting(seen[workload] ?? [])
            #expect(missing.isEmpty, "workload \(workload) has no rows for \(missing.sorted())")
        }
        // The per-workload tables and the goals are there, and nothing is n/a.
        for heading in ["## Goals", "## 1. Warm blob throughput", "## 2. Warm manifest by tag", "## 3. Cold pull",
                        "concurrent cold pulls", "## 5. Memory and CPU", "## 6. Tag-heavy", "## 7. Soak", "## 8. Warm blob from S3", "## 9. Replicas",
                        "## Machine and versions"] {
            #expect(text.contains(heading), "the report lacks \(heading)")
        }
        #expect(!text.contains("n/a"), "the report has a missing figure")
        // It cleaned up: its temp dir is gone and no process names a path under it.
        // (Other programs may leave their own temp files there: Foundation's TemporaryDirectory.*.)
        let left = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.hasPrefix("mirrorgate-") }
        #expect(left.isEmpty, "the harness left its temp dir: \(left)")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { entry in
            guard Int(entry) != nil, let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(entry)/cmdline")) else { return false }
            return String(decoding: cmdline, as: UTF8.self).contains(scratch.path)
        }
        #expect(leftovers.isEmpty, "processes left running: \(leftovers)")
    }
}
