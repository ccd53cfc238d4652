import Foundation
import MirrorGateStorage
import Testing

/// The pull ledger's pure parts: the client kind from `User-Agent`, and how tallies become
/// report rows and JSON.
@Suite("PullReport")
struct PullReportTests {
    @Test(arguments: [
        ("containerd/1.6.20~ds1", ClientKind.containerd),
        ("containerd/v1.7.13", .containerd),
        ("Containerd/2.0.0", .containerd),
        ("docker/20.10.24+dfsg1 go/go1.19.8 git-commit/5d6db84 kernel/6.1.0-13-amd64 os/linux arch/amd64 UpstreamClient(Docker-Client/20.10.24+dfsg1 \\(linux\\))", .docker),
        ("buildkit/v0.12.5", .docker),
        ("skopeo/1.9.3", .skopeo),
        ("libpod/4.3.1", .podman),
        ("cri-o/1.28.1 go/go1.20.10 os/linux arch/amd64", .podman),
        ("containers/5.24.1 (github.com/containers/image)", .podman),
        ("curl/7.88.1", .other),
        ("Go-http-client/1.1", .other),
        ("containerdx/1.0", .other),
        ("", .other),
    ])
    func clientKindFromUserAgent(_ userAgent: String, _ kind: ClientKind) {
        #expect(ClientKind(userAgent: userAgent) == kind, "\(userAgent)")
    }

    @Test func noUserAgentIsOther() {
        #expect(ClientKind(userAgent: nil) == .other)
    }

    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func tally(
        _ repository: String, digest: String = "sha256:a", client: String = "10.0.0.1", kind: ClientKind = .containerd,
        servedBy: String = "cache", spentOn: String? = nil, pulls: Int, checks: Int = 0, spends: Int = 0, last: TimeInterval? = nil
    ) -> PullTally {
        PullTally(
            registry: "docker.io", repository: repository, digest: digest, client: client, clientKind: kind, servedBy: servedBy,
            spentOn: spentOn, pulls: pulls, checks: checks, spends: spends, lastPull: last.map { now.addingTimeInterval(-$0) })
    }

    static let tallies = [
        // alpine: pulled five times by one node (one spend on hub, four from the cache), once by CI.
        tally("library/alpine", servedBy: "hub", spentOn: "hub", pulls: 1, spends: 1, last: 600),
        tally("library/alpine", pulls: 4, checks: 3, last: 60),
        tally("library/alpine", client: "ci", kind: .docker, pulls: 1, last: 30),
        // redis: two digests, one from a free mirror.
        tally("library/redis", digest: "sha256:b", servedBy: "mirror", pulls: 2, last: 120),
        tally("library/redis", digest: "sha256:c", servedBy: "hub", spentOn: "hub", pulls: 1, spends: 1, last: 100),
        // A tag check that spent (a HEAD that found a new digest) but no pull.
        tally("library/busybox", digest: "sha256:d", servedBy: "hub", spentOn: "hub-auth", pulls: 0, checks: 1, spends: 1),
        // Only checks: left out.
        tally("library/nginx", digest: "sha256:e", pulls: 0, checks: 9),
    ]

    @Test func rowsByRepository() {
        let report = PullReport(tallies: Self.tallies, by: .repository, since: Self.now.addingTimeInterval(-86_400), generatedAt: Self.now)
        #expect(report.rows == [
            .init(key: "docker.io/library/alpine", pulls: 6, digests: 1, spent: ["hub": 1], saved: 5, lastPull: Self.now.addingTimeInterval(-30)),
            .init(key: "docker.io/library/redis", pulls: 3, digests: 2, spent: ["hub": 1], saved: 2, lastPull: Self.now.addingTimeInterval(-100)),
            .init(key: "docker.io/library/busybox", pulls: 0, digests: 0, spent: ["hub-auth": 1], saved: 0, lastPull: nil),
        ])
    }

    @Test func rowsByClientAndByUpstream() {
        let clients = PullReport(tallies: Self.tallies, by: .client, since: Self.now, generatedAt: Self.now)
        #expect(clients.rows.map(\.key) == ["10.0.0.1 (containerd)", "ci (docker)"])
        #expect(clients.rows[0].pulls == 8)
        #expect(clients.rows[0].digests == 3)
        #expect(clients.rows[0].spent == ["hub": 2, "hub-auth": 1])
        #expect(clients.rows[0].saved == 6)
        #expect(clients.rows[1] == .init(key: "ci (docker)", pulls: 1, digests: 1, spent: [:], saved: 1, lastPull: Self.now.addingTimeInterval(-30)))

        let upstreams = PullReport(tallies: Self.tallies, by: .upstream, since: Self.now, generatedAt: Self.now)
        #expect(upstreams.rows.map(\.key) == ["cache", "hub", "mirror"])
        #expect(upstreams.rows[0].saved == 5)
        #expect(upstreams.rows[1].spent == ["hub": 2, "hub-auth": 1])
        #expect(upstreams.rows[1].saved == 0)
        #expect(upstreams.rows[2].saved == 2, "a pull from an upstream that meters nothing spends no quota")
        // However the rows are grouped, the totals are the same.
        for report in [clients, upstreams, PullReport(tallies: Self.tallies, by: .repository, since: Self.now, generatedAt: Self.now)] {
            #expect(report.rows.reduce(0) { $0 + $1.pulls } == 9)
            #expect(report.rows.reduce(0) { $0 + $1.saved } == 7)
            #expect(report.rows.reduce(0) { $0 + $1.spentTotal } == 3)
        }
    }

    @Test func jsonRowsHoldTheirKeyNextToTheCounts() throws {
        let report = PullReport(tallies: Self.tallies, by: .repository, since: Self.now.addingTimeInterval(-3600), generatedAt: Self.now)
        let data = try PullReport.encoder.encode(report)
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(json["by"] as? String == "repository")
        #expect(json["since"] as? String == "2027-01-15T07:00:00Z")
        #expect(json["generated_at"] as? String == "2027-01-15T08:00:00Z")
        let rows = try #require(json["rows"] as? [[String: Any]])
        #expect(Set(rows[0].keys) == ["repository", "pulls", "digests", "spent", "saved", "last_pull"])
        #expect(rows[0]["repository"] as? String == "docker.io/library/alpine")
        #expect(rows[0]["spent"] as? [String: Int] == ["hub": 1])
        #expect(rows[2]["last_pull"] is NSNull, "no pull: last_pull is null, not missing")
        #expect(try PullReport.decoder.decode(PullReport.self, from: data) == report)

        // An upstream name is a key as configured, never converted.
        let named = PullReport(tallies: [Self.tally("a/b", servedBy: "hubAnon_1", spentOn: "hubAnon_1", pulls: 1, spends: 1)], by: .upstream, since: Self.now, generatedAt: Self.now)
        let text = String(decoding: try PullReport.encoder.encode(named), as: UTF8.self)
        #expect(text.contains("\"upstream\" : \"hubAnon_1\""))
        #expect(text.contains("\"hubAnon_1\" : 1"))
    }
}
