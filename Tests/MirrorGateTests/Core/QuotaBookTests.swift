import Foundation
import Logging
import MirrorGateConfig
import MirrorGateStorage
import MirrorGateUpstream
import NIOHTTP1
import Testing

@testable import MirrorGateCore

@Suite("QuotaBook")
struct QuotaBookTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    static func config(pulls: Int? = 2) throws -> GatewayConfig {
        try ConfigLoader(environment: [:]).load(yaml: """
            registries:
              docker.io:
                upstreams:
                  - name: anonymous
                    url: https://registry-1.docker.io
            \(pulls.map { "        budget: {pulls: \($0), window: 1h}" } ?? "")
                  - name: account
                    url: https://registry-1.docker.io
                    username: me
                    password: secret
            """)
    }

    static func upstream(_ config: GatewayConfig, _ index: Int) -> Upstream {
        Upstream(registry: "docker.io", config: config.registries[0].upstreams[index])
    }

    func spend(_ book: QuotaBook, _ upstream: Upstream, at now: Date, headers: HTTPHeaders = [:]) async throws {
        guard case .success = book.reserveManifestGET(upstream, now: now) else {
            Issue.record("budget refused a spend")
            return
        }
        await book.finishManifestGET(upstream, status: 200, headers: headers, now: now)
    }

    @Test func configuredBudgetIsSpentThenResetsAfterTheWindow() async throws {
        let dir = try TemporaryDirectory("quota")
        defer { dir.cleanUp() }
        let config = try Self.config()
        let book = QuotaBook(config: config, store: try SQLiteMetadataStore(path: dir.path + "/m.sqlite"), logger: Self.logger)
        let anonymous = Self.upstream(config, 0)
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        try await spend(book, anonymous, at: t0)
        try await spend(book, anonymous, at: t0.addingTimeInterval(10))
        guard case .failure(.rateLimited(let until)) = book.reserveManifestGET(anonymous, now: t0.addingTimeInterval(20)) else {
            Issue.record("third GET admitted over a budget of 2")
            return
        }
        #expect(until == t0.addingTimeInterval(3600))
        // HEADs and blobs stay free.
        guard case .success = book.admitFree(anonymous, now: t0.addingTimeInterval(20)) else {
            Issue.record("a free request was refused")
            return
        }
        // One hour after the first spend, one pull is back.
        guard case .success = book.reserveManifestGET(anonymous, now: t0.addingTimeInterval(3601)) else {
            Issue.record("budget did not reset after the window")
            return
        }
        // The authenticated upstream has its own (unlimited) budget.
        #expect(book.status(Self.upstream(config, 1))?.remaining == nil)
    }

    @Test func announcedRemainingIsUsedWhenSmaller() async throws {
        let dir = try TemporaryDirectory("quota")
        defer { dir.cleanUp() }
        let config = try Self.config(pulls: 100)
        let book = QuotaBook(config: config, store: try SQLiteMetadataStore(path: dir.path + "/m.sqlite"), logger: Self.logger)
        let anonymous = Self.upstream(config, 0)
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        // A free HEAD announces 1 left.
        await book.observe(anonymous, status: 200, headers: ["ratelimit-limit": "100;w=21600", "ratelimit-remaining": "1;w=21600"], manifestGET: false, now: t0)
        #expect(book.status(anonymous, now: t0)?.remaining == 1)
        try await spend(book, anonymous, at: t0.addingTimeInterval(1))
        guard case .failure = book.reserveManifestGET(anonymous, now: t0.addingTimeInterval(2)) else {
            Issue.record("GET admitted although the upstream announced no pulls left")
            return
        }
        // A later HEAD announcing budget again lifts it.
        await book.observe(anonymous, status: 200, headers: ["ratelimit-remaining": "5;w=21600"], manifestGET: false, now: t0.addingTimeInterval(60))
        #expect(book.status(anonymous, now: t0.addingTimeInterval(61))?.remaining == 5)
    }

    @Test func a429BlocksGETsUntilRetryAfterAndOnFreeRequestsBlocksEverything() async throws {
        let dir = try TemporaryDirectory("quota")
        defer { dir.cleanUp() }
        let config = try Self.config(pulls: nil)
        let book = QuotaBook(config: config, store: try SQLiteMetadataStore(path: dir.path + "/m.sqlite"), logger: Self.logger)
        let anonymous = Self.upstream(config, 0)
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        guard case .success = book.reserveManifestGET(anonymous, now: t0) else { Issue.record("refused"); return }
        await book.finishManifestGET(anonymous, status: 429, headers: ["retry-after": "120"], now: t0)
        guard case .failure(.rateLimited(let until)) = book.reserveManifestGET(anonymous, now: t0.addingTimeInterval(60)) else {
            Issue.record("GET admitted after a 429")
            return
        }
        #expect(abs(until!.timeIntervalSince(t0.addingTimeInterval(120))) < 1)
        guard case .success = book.admitFree(anonymous, now: t0.addingTimeInterval(60)) else { Issue.record("HEAD blocked by a GET 429"); return }
        guard case .success = book.reserveManifestGET(anonymous, now: t0.addingTimeInterval(121)) else { Issue.record("still blocked after Retry-After"); return }
        await book.finishManifestGET(anonymous, status: 200, headers: [:], now: t0.addingTimeInterval(121))

        await book.observe(anonymous, status: 429, headers: ["retry-after": "30"], manifestGET: false, now: t0.addingTimeInterval(200))
        guard case .failure = book.admitFree(anonymous, now: t0.addingTimeInterval(210)) else { Issue.record("HEAD 429 did not block"); return }
        guard case .success = book.admitFree(anonymous, now: t0.addingTimeInterval(231)) else { Issue.record("block outlived Retry-After"); return }
    }

    @Test func spendsAndLearnedLimitsSurviveARestart() async throws {
        let dir = try TemporaryDirectory("quota")
        defer { dir.cleanUp() }
        let config = try Self.config(pulls: 3)
        let anonymous = Self.upstream(config, 0)
        let now = Date()
        do {
            let book = QuotaBook(config: config, store: try SQLiteMetadataStore(path: dir.path + "/m.sqlite"), logger: Self.logger)
            try await spend(book, anonymous, at: now.addingTimeInterval(-30))
            try await spend(book, anonymous, at: now.addingTimeInterval(-20), headers: ["ratelimit-limit": "10;w=3600", "ratelimit-remaining": "8;w=3600"])
        }
        let restarted = QuotaBook(config: config, store: try SQLiteMetadataStore(path: dir.path + "/m.sqlite"), logger: Self.logger)
        await restarted.load()
        let status = try #require(restarted.status(anonymous, now: now))
        #expect(status.spentInWindow == 2)
        #expect(status.remaining == 1)
        #expect(status.limit == 3)
    }
}
