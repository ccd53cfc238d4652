import Foundation
import MirrorGateConfig
@testable import MirrorGateCore
@testable import MirrorGateHTTP
import MirrorGateStorage
import Testing

/// The status page's last day of the ledger and its policy section.
@Suite("StatusPage: ledger and policy")
struct StatusPageLedgerTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func status() -> GatewayStatus {
        GatewayStatus(
            generatedAt: now, startedAt: now.addingTimeInterval(-60), registries: [.init(registry: "docker.io", upstreams: [])],
            cache: .init(sizeBytes: 0, maxSizeBytes: 1 << 30, objects: 0, writable: true, unwritableReason: nil, manifestHits: 0, manifestMisses: 0, blobHits: 0, blobMisses: 0),
            singleFlight: .init(blobFetches: 0, blobWaiters: 0), recentFailovers: [])
    }

    static func pulls(_ tallies: [PullTally]) -> StatusPage.Extras.Pulls {
        func report(_ by: PullReport.Grouping) -> PullReport { PullReport(tallies: tallies, by: by, since: now.addingTimeInterval(-86_400), generatedAt: now) }
        return .init(repositories: report(.repository), clients: report(.client), upstreams: report(.upstream))
    }

    static func tally(_ repository: String, client: String = "10.0.0.1", servedBy: String, spentOn: String? = nil, pulls: Int) -> PullTally {
        PullTally(
            registry: "docker.io", repository: repository, digest: "sha256:\(repository)", client: client, clientKind: .containerd, servedBy: servedBy,
            spentOn: spentOn, pulls: pulls, checks: 0, spends: spentOn == nil ? 0 : pulls, lastPull: now)
    }

    @Test func showsTopRepositoriesClientsAndSpendAgainstSavings() throws {
        let tallies = [
            Self.tally("library/alpine", servedBy: "cache", pulls: 30),
            Self.tally("library/alpine", servedBy: "hub<x>", spentOn: "hub<x>", pulls: 10),
            Self.tally("<img src=x>/app", client: "<b>eve</b>", servedBy: "mirror", pulls: 5),
        ]
        let html = StatusPage.render(Self.status(), extras: .init(pulls: Self.pulls(tallies)))
        #expect(html.contains("<h2>Pulls, last 24 hours</h2>"))
        #expect(html.contains("45 pulls · <span class=\"ok\">35 served without spending quota</span> · <span class=\"bad\">10 spent</span> (hub&lt;x&gt; 10)"))
        #expect(!html.contains("<img src=x>") && !html.contains("<b>eve</b>"))
        #expect(html.contains("&lt;img src=x&gt;/app") && html.contains("&lt;b&gt;eve&lt;/b&gt; (containerd)"))
        // The widest bar is the cache's 30 saved; hub's 10 spent is a third of it.
        #expect(html.contains("<tr><th>cache</th><td><span class=\"bar spent\" style=\"width:0.00rem\"></span>0 spent<br><span class=\"bar saved\" style=\"width:24.00rem\"></span>30 saved</td></tr>"))
        #expect(html.contains("<tr><th>hub&lt;x&gt;</th><td><span class=\"bar spent\" style=\"width:8.00rem\"></span>10 spent<br>"))
        let top = try #require(html.range(of: "<h3>Top repositories</h3>"))
        let clients = try #require(html.range(of: "<h3>Top clients</h3>"))
        let alpine = try #require(html.range(of: "<code>docker.io/library/alpine</code></td><td class=\"num\">40</td><td class=\"num\">1</td><td>hub&lt;x&gt; 10</td><td class=\"num\">30</td>"))
        #expect(top.upperBound < alpine.lowerBound && alpine.upperBound < clients.lowerBound)
        #expect(!html.contains("<script"))
    }

    @Test func saysWhenThereIsNothingOrTheLedgerCannotBeRead() {
        #expect(StatusPage.render(Self.status(), extras: .init(pulls: Self.pulls([]))).contains("No manifest pulls in the last 24 hours."))
        #expect(StatusPage.render(Self.status()).contains("The pull ledger cannot be read right now."))
    }

    @Test func policySectionListsRulesDenialsAndRecentOnes() throws {
        let policy = RepositoryPolicy(allow: [try RepositoryGlob(parsing: "library/*")], deny: [try RepositoryGlob(parsing: "library/*-nightly")])
        let denial = PolicyDenials.Denial(at: Self.now, registry: "docker.io", repository: "someone/<x>", rule: "registries.docker.io.policy.allow (no match)", client: "10.0.0.9")
        let html = StatusPage.render(Self.status(), extras: .init(policies: ["docker.io": policy], denialCounts: ["docker.io": 4], recentDenials: [denial]))
        #expect(html.contains("<tr><td><code>docker.io</code></td><td>library/*</td><td>library/*-nightly</td><td class=\"num\">4</td></tr>"))
        #expect(html.contains("<code>docker.io/someone/&lt;x&gt;</code></td><td>registries.docker.io.policy.allow (no match)</td><td>10.0.0.9</td>"))
        #expect(!StatusPage.render(Self.status()).contains("Repository policy"))
    }
}
