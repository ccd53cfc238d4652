import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import MirrorGateConfig
@testable import MirrorGateHTTP
import MirrorGateStorage
import RegistryModel
import Testing

@Suite("AccessRules")
struct AccessRulesTests {
    static func config(_ yaml: String) throws -> GatewayConfig {
        try ConfigLoader(environment: [:], readFile: { _ in "alice:x" }).load(yaml: yaml)
    }

    static let yaml = """
        auth: {htpasswd: /h}
        registries:
          docker.io:
            policy: {allow: ["library/*"], deny: ["library/*-nightly"]}
            upstreams: [{url: "https://registry-1.docker.io"}]
          private.example:
            users: [alice]
            upstreams: [{url: "https://cache.example"}]
        """

    @Test func policyRefusesWithTheRepositoryAndTheRule() throws {
        let rules = AccessRules(config: try Self.config(Self.yaml))
        #expect(rules.refusal(user: "bob", client: "bob", registry: "docker.io", repository: "library/ubuntu") == nil)
        let random = try #require(rules.refusal(user: nil, client: "10.0.0.7", registry: "docker.io", repository: "someone/random"))
        #expect(random.error.code == .denied)
        #expect(random.error.status == 403)
        #expect(random.error.message.contains("repository docker.io/someone/random is not allowed"))
        #expect(random.rule == "registries.docker.io.policy.allow (no match)")
        let nightly = try #require(rules.refusal(user: "bob", client: "bob", registry: "docker.io", repository: "library/app-nightly"))
        #expect(nightly.rule == "registries.docker.io.policy.deny 'library/*-nightly'")

        #expect(rules.denials.counts == ["docker.io": 2])
        #expect(rules.denials.recent.map(\.repository) == ["library/app-nightly", "someone/random"])
        #expect(rules.denials.recent.last?.client == "10.0.0.7")
    }

    @Test func usersAreCheckedFirstAndNotCountedAsPolicyDenials() throws {
        let rules = AccessRules(config: try Self.config(Self.yaml))
        let refusal = try #require(rules.refusal(user: "bob", client: "bob", registry: "private.example", repository: "x/y"))
        #expect(refusal.rule == "registries.private.example.users")
        #expect(refusal.error.message.contains("user 'bob' may not pull"))
        #expect(rules.refusal(user: "alice", client: "alice", registry: "private.example", repository: "x/y") == nil)
        #expect(rules.denials.counts.isEmpty)
    }

    @Test func updateSwapsTheRules() throws {
        let rules = AccessRules(config: try Self.config(Self.yaml))
        #expect(rules.refusal(user: nil, client: "a", registry: "docker.io", repository: "bitnami/redis") != nil)
        rules.update(try Self.config(Self.yaml.replacingOccurrences(of: #"allow: ["library/*"]"#, with: #"allow: ["library/*", "bitnami/*"]"#)))
        #expect(rules.refusal(user: nil, client: "a", registry: "docker.io", repository: "bitnami/redis") == nil)
        #expect(rules.policies["docker.io"]?.allow?.count == 2)
    }

    @Test func keepsTheLastDenials() throws {
        let rules = AccessRules(config: try Self.config(Self.yaml))
        for n in 0..<30 { _ = rules.refusal(user: nil, client: "c", registry: "docker.io", repository: "x/\(n)") }
        #expect(rules.denials.counts["docker.io"] == 30)
        #expect(rules.denials.recent.count == 20)
        #expect(rules.denials.recent.first?.repository == "x/29")
    }

    /// containerd resolves tags with HEAD and prints only the status line of a failure, so a
    /// denial's message goes in the reason phrase too (printable ASCII only), and the header
    /// that carries it there is not sent.
    @Test func aDenialCarriesItsMessageInTheStatusLine() throws {
        typealias R = RegistryResponder<BasicRequestContext>
        let denied = R.errorResponse(RegistryError(.denied, "repository docker.io/someone/random is not allowed\u{2028}\n"), method: .head)
        let reason = try #require(denied.headers[HTTPField.Name(ReasonPhraseHandler.header)!])
        #expect(reason == "Forbidden: repository docker.io/someone/random is not allowed??")
        #expect(R.errorResponse(RegistryError(.manifestUnknown, "manifest unknown"), method: .head).headers[HTTPField.Name(ReasonPhraseHandler.header)!] == nil)

        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTPResponseEncoder())
        try channel.pipeline.syncOperations.addHandler(ReasonPhraseHandler())
        for (status, headers) in [(HTTPResponseStatus.forbidden, [(ReasonPhraseHandler.header, reason), ("Content-Length", "0")]), (.notFound, [("Content-Length", "0")])] {
            try channel.writeOutbound(HTTPServerResponsePart.head(.init(version: .http1_1, status: status, headers: HTTPHeaders(headers))))
            try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        }
        var bytes = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += String(buffer: buffer) }
        #expect(bytes.hasPrefix("HTTP/1.1 403 Forbidden: repository docker.io/someone/random is not allowed??\r\n"), "\(bytes)")
        #expect(!bytes.contains(ReasonPhraseHandler.header))
        #expect(bytes.contains("HTTP/1.1 404 Not Found\r\n"))
        _ = try channel.finish()
    }
}

extension AccessRules.Refusal: Equatable {
    public static func == (a: Self, b: Self) -> Bool { a.rule == b.rule && a.error.message == b.error.message }
}

/// The ledger's writer: the request path only queues; a flush writes; a report sees everything
/// queued before it.
@Suite("PullLedger")
struct PullLedgerTests {
    static func record(_ n: Int, spentOn: String? = nil) -> PullRecord {
        PullRecord(
            at: Date(), registry: "docker.io", repository: "library/app\(n % 3)", reference: "v1", digest: "sha256:\(n)", client: "10.0.0.1",
            clientKind: .containerd, isPull: true, cache: "hit", servedBy: "cache", spentOn: spentOn)
    }

    @Test func queuedRequestsAreInTheNextReport() async throws {
        let dir = try TemporaryDirectory("pull-ledger")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        let ledger = PullLedger(store: store, retention: .seconds(86_400), logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        for n in 0..<9 { ledger.record(Self.record(n)) }
        #expect(ledger.pendingCount == 9)
        #expect(try await store.pullTallies(since: .distantPast).isEmpty, "nothing is written on the request path")
        let report = try await ledger.report(since: Date().addingTimeInterval(-60), by: .repository)
        #expect(ledger.pendingCount == 0)
        #expect(report.rows.map(\.pulls) == [3, 3, 3])
        #expect(report.rows.map(\.digests) == [3, 3, 3])
        ledger.record(Self.record(9, spentOn: "hub"))
        await ledger.flush()
        #expect(try await ledger.report(since: .distantPast, by: .client).rows.first?.spent == ["hub": 1])
    }

    @Test func maintenanceRollsUpAfterADayAndDropsWhatIsPastTheRetention() async throws {
        let dir = try TemporaryDirectory("pull-ledger-maintain")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        let ledger = PullLedger(store: store, retention: .seconds(3 * 86_400), logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let now = Date()
        for age: TimeInterval in [3600, 30 * 3600, 4 * 86_400] {
            var record = Self.record(0)
            record.at = now.addingTimeInterval(-age)
            ledger.record(record)
        }
        await ledger.flush()
        await ledger.maintain(now: now)
        #expect(try await ledger.report(since: .distantPast, by: .repository).rows.map(\.pulls) == [2], "the 4-day-old request is past the retention")
        #expect(try await store.rollUpPulls(before: now.addingTimeInterval(-PullLedger.rollUpAge)) == 0, "the 30-hour-old one was rolled up")
        #expect(try await store.rollUpPulls(before: now) == 1, "the hour-old one was not")
    }

    @Test func maintenanceRunsAtATenthOfTheRetention() throws {
        let dir = try TemporaryDirectory("pull-ledger-interval")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        let ledger = PullLedger(store: store, retention: .seconds(30 * 86_400), logger: Logger(label: "test"))
        #expect(ledger.maintenanceInterval == .seconds(600))
        ledger.setRetention(.seconds(5))
        #expect(ledger.maintenanceInterval == .seconds(1))
        ledger.setRetention(.seconds(3000))
        #expect(ledger.maintenanceInterval == .seconds(300))
    }
}
