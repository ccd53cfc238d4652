import Foundation
import MirrorGateStorage
import PropertyBased
import Testing

/// The pull ledger in SQLite: requests, hourly roll-ups, retention, and reports that are the
/// same before and after a roll-up.
@Suite("PullLedgerStore (SQLite)")
struct PullLedgerStoreTests {
    static let now = Date(timeIntervalSince1970: 1_800_003_600)

    static func record(
        _ repository: String = "library/alpine", at: TimeInterval, digest: String = "sha256:a", client: String = "10.0.0.1",
        kind: ClientKind = .containerd, pull: Bool = true, servedBy: String = "cache", spentOn: String? = nil
    ) -> PullRecord {
        PullRecord(
            at: now.addingTimeInterval(-at), registry: "docker.io", repository: repository, reference: "v1", digest: digest,
            client: client, clientKind: kind, isPull: pull, cache: servedBy == "cache" ? "hit" : "miss", servedBy: servedBy, spentOn: spentOn)
    }

    static func report(_ store: SQLiteMetadataStore, since: Date, by: PullReport.Grouping = .repository) async throws -> [PullReport.Row] {
        PullReport(tallies: try await store.pullTallies(since: since), by: by, since: since, generatedAt: now).rows
    }

    @Test func requestsAreTalliedBySince() async throws {
        let dir = try TemporaryDirectory("ledger-tally")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        try await store.recordPulls([
            Self.record(at: 10, servedBy: "hub", spentOn: "hub"),
            Self.record(at: 20),
            Self.record(at: 30, pull: false),
            Self.record("library/redis", at: 7200, digest: "sha256:b"),
        ])
        let rows = try await Self.report(store, since: Self.now.addingTimeInterval(-3600))
        #expect(rows == [.init(key: "docker.io/library/alpine", pulls: 2, digests: 1, spent: ["hub": 1], saved: 1, lastPull: Self.now.addingTimeInterval(-10))])
        #expect(try await Self.report(store, since: Self.now.addingTimeInterval(-86_400)).map(\.key) == ["docker.io/library/alpine", "docker.io/library/redis"])
        let tallies = try await store.pullTallies(since: .distantPast)
        #expect(tallies.reduce(0) { $0 + $1.checks } == 1)
    }

    @Test func rollUpsKeepReportsAndShrinkTheTable() async throws {
        let dir = try TemporaryDirectory("ledger-rollup")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        // 200 pulls of one image by one node over three hours, three days ago; one today.
        var records = (0..<200).map { Self.record(at: 3 * 86_400 + Double($0) * 50) }
        records.append(Self.record(at: 60, servedBy: "hub", spentOn: "hub"))
        try await store.recordPulls(records)
        let before = try await Self.report(store, since: .distantPast)
        let folded = try await store.rollUpPulls(before: Self.now.addingTimeInterval(-2 * 86_400))
        #expect(folded == 200)
        #expect(try await store.pullTallies(since: .distantPast).count == 2)
        #expect(try await Self.report(store, since: .distantPast) == before)
        // A second roll-up of the same span changes nothing; later requests of an hour already
        // rolled up merge into its row.
        #expect(try await store.rollUpPulls(before: Self.now.addingTimeInterval(-2 * 86_400)) == 0)
        try await store.recordPulls([Self.record(at: 3 * 86_400 + 10, pull: false)])
        #expect(try await store.rollUpPulls(before: Self.now.addingTimeInterval(-2 * 86_400)) == 1)
        #expect(try await Self.report(store, since: .distantPast) == before)
        #expect(try await store.pullTallies(since: .distantPast).reduce(0) { $0 + $1.checks } == 1)
        // Roll-ups count for a window by whole hours that start within it.
        let recent = try await Self.report(store, since: Self.now.addingTimeInterval(-86_400))
        #expect(recent.map(\.pulls) == [1])
    }

    @Test func retentionDropsOldRequestsAndRollUps() async throws {
        let dir = try TemporaryDirectory("ledger-retention")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        try await store.recordPulls([
            Self.record(at: 40 * 86_400), Self.record(at: 10 * 86_400), Self.record(at: 100), Self.record(at: 5),
        ])
        try await store.rollUpPulls(before: Self.now.addingTimeInterval(-2 * 86_400))
        let removed = try await store.prunePulls(before: Self.now.addingTimeInterval(-30 * 86_400))
        #expect(removed == 1)
        #expect(try await Self.report(store, since: .distantPast).first?.pulls == 3)
        #expect(try await store.prunePulls(before: Self.now.addingTimeInterval(-50)) == 2)
        #expect(try await Self.report(store, since: .distantPast).first?.pulls == 1)
    }

    @Test func theLedgerSurvivesReopening() async throws {
        let dir = try TemporaryDirectory("ledger-reopen")
        defer { dir.cleanUp() }
        do {
            let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
            try await store.recordPulls([Self.record(at: 5, client: "alice", kind: .docker)])
        }
        let reopened = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        #expect(try await Self.report(reopened, since: .distantPast, by: .client).map(\.key) == ["alice (docker)"])
    }

    /// Whatever the requests, a report over everything is the same before and after a roll-up,
    /// for every grouping.
    @Test func rollUpsNeverChangeAReport() async throws {
        let dir = try TemporaryDirectory("ledger-rollup-property")
        defer { dir.cleanUp() }
        let repositories = ["library/alpine", "library/redis", "team/app"]
        let clients: [(String, ClientKind)] = [("10.0.0.1", .containerd), ("10.0.0.2", .docker), ("ci", .skopeo)]
        let sources: [(String, String?)] = [("cache", nil), ("hub", "hub"), ("mirror", nil), ("hub", "hub-auth")]
        let input = Generator { rng in
            (0..<Int.random(in: 1...60, using: &rng)).map { _ -> PullRecord in
                let client = clients.randomElement(using: &rng)!
                let source = sources.randomElement(using: &rng)!
                return Self.record(
                    repositories.randomElement(using: &rng)!, at: Double.random(in: 0...(5 * 86_400), using: &rng),
                    digest: "sha256:\(Int.random(in: 0...3, using: &rng))", client: client.0, kind: client.1,
                    pull: Int.random(in: 0...3, using: &rng) > 0, servedBy: source.0, spentOn: source.1)
            }
        }
        await propertyCheck(count: HostileInput.scaled(40), input: input) { records in
            do {
                let store = try SQLiteMetadataStore(path: dir.path + "/metadata-\(UUID().uuidString).sqlite")
                try await store.recordPulls(records)
                var before: [[PullReport.Row]] = []
                for by in PullReport.Grouping.allCases { before.append(try await Self.report(store, since: .distantPast, by: by)) }
                try await store.rollUpPulls(before: Self.now.addingTimeInterval(-2 * 86_400))
                for (index, by) in PullReport.Grouping.allCases.enumerated() {
                    #expect(try await Self.report(store, since: .distantPast, by: by) == before[index], "\(by)")
                }
            } catch {
                Issue.record("\(error)")
            }
        }
    }
}
