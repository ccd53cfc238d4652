import Foundation
import Logging
import MirrorGateConfig
import MirrorGateStorage
import MirrorGateUpstream
import RegistryModel
import Testing

@testable import MirrorGateCore

/// The walk's decisions, in the style of AsyncHTTPClient's connection-pool state-machine tests:
/// real circuit breakers and a real ledger (SQLite journal in a temporary directory), no
/// network — nothing here calls `send`.
@Suite("UpstreamWalk")
struct UpstreamWalkTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    static let name = try! RepositoryName(parsing: "library/app")
    static let digest = Digest(algorithm: .sha256, hex: String(repeating: "a", count: 64))

    /// A pool over `docker.io` with upstreams `a`, `b`, `c` (each its own budget; `a` may have
    /// a configured budget of `aPulls`), threshold 1, cool-down 1 s.
    struct Fixture {
        let dir: TemporaryDirectory
        let pool: UpstreamPool
        let upstreams: [Upstream]
        let client: UpstreamClient

        init(aPulls: Int? = nil, resolveB: Bool = true) async throws {
            dir = try TemporaryDirectory("walk")
            let config = try ConfigLoader(environment: [:]).load(yaml: """
                health: {timeout: 100ms, failure_threshold: 1, interval: 1s}
                registries:
                  docker.io:
                    upstreams:
                      - name: a
                        url: https://a.example.com
                \(aPulls.map { "        budget: {pulls: \($0), window: 1h}" } ?? "")
                      - name: b
                        url: https://b.example.com
                        resolve: \(resolveB)
                      - name: c
                        url: https://c.example.com
                """)
            let ledger = LocalBudgetLedger(limits: BudgetKey.limits(config), journal: try SQLiteMetadataStore(path: dir.path + "/m.sqlite"), logger: UpstreamWalkTests.logger)
            client = UpstreamClient(timeout: .seconds(1), logger: UpstreamWalkTests.logger)
            let router = UpstreamRouter(config: config)
            pool = UpstreamPool(client: client, router: router, health: UpstreamHealth(config: config), ledger: ledger, logger: UpstreamWalkTests.logger)
            upstreams = router.candidates(registry: "docker.io", purpose: .content)
        }

        func open(_ index: Int) {
            pool.health.breaker(upstreams[index])!.recordFailure("test")
        }

        func walk(_ ask: UpstreamAsk, purpose: UpstreamRouter.Purpose = .content, excluding: Set<Upstream.ID> = []) -> UpstreamWalk {
            pool.walk(registry: "docker.io", purpose: purpose, ask: ask, repository: UpstreamWalkTests.name, excluding: excluding)
        }

        /// Spends one pull of upstream `index` the way a successful GET does.
        func spendOne(_ index: Int) async {
            let key = pool.budgetKey(upstreams[index])!
            guard case .granted(let hold?) = await pool.ledger.reserve(key, now: Date()) else {
                Issue.record("the ledger refused a pull")
                return
            }
            await pool.ledger.settle(hold, answer: BudgetAnswer(status: 200), now: Date())
        }
    }

    /// Runs `body` with a fixture that is always shut down.
    func with(aPulls: Int? = nil, resolveB: Bool = true, _ body: (Fixture) async throws -> Void) async throws {
        let f = try await Fixture(aPulls: aPulls, resolveB: resolveB)
        do {
            try await body(f)
        } catch {
            try await f.client.shutdown()
            f.dir.cleanUp()
            throw error
        }
        try await f.client.shutdown()
        f.dir.cleanUp()
    }

    static let get = UpstreamAsk.manifest(.digest(digest), method: .GET)
    static let head = UpstreamAsk.manifest(.tag("v1"), method: .HEAD)

    @Test func candidatesComeInConfiguredOrder() async throws {
        try await with { f in
            var walk = f.walk(Self.get)
            var names: [String] = []
            while let next = await walk.next() {
                names.append(next.name)
                walk.notFound(next, status: 404)
            }
            #expect(names == ["a", "b", "c"])
            #expect(walk.clientError(notFound: RegistryError(.manifestUnknown, "unknown")).status == 404)
        }
    }

    @Test func resolvingSkipsUpstreamsThatDoNotResolve() async throws {
        try await with(resolveB: false) { f in
            var walk = f.walk(Self.head, purpose: .resolveTag)
            var names: [String] = []
            while let next = await walk.next() { names.append(next.name) }
            #expect(names == ["a", "c"])
        }
    }

    @Test func anOpenCircuitIsSkippedAndNamed() async throws {
        try await with { f in
            f.open(0)
            var walk = f.walk(Self.get)
            #expect(await walk.next()?.name == "b")
            #expect(walk.note == "a: skipped (circuit open)")
        }
    }

    /// The defect the walk fixes: a budget refusal used to take the half-open trial slot, so
    /// free requests and probes then skipped a healthy upstream as "circuit open" for seconds.
    @Test func aBudgetRefusalNeverTakesTheTrialSlot() async throws {
        try await with(aPulls: 1) { f in
            await f.spendOne(0)
            f.open(0)
            let later = ContinuousClock.now + .seconds(30)  // past the cool-down: the next admit is the trial
            var spend = f.walk(Self.get)
            #expect(await spend.next(instant: later)?.name == "b")
            #expect(spend.note?.hasPrefix("a: skipped (pull budget spent") == true, "\(spend.note ?? "")")
            // The trial slot is still free: a free HEAD gets it.
            var free = f.walk(Self.head, purpose: .resolveTag)
            #expect(await free.next(instant: later)?.name == "a")
            #expect(f.pool.health.breaker(f.upstreams[0])!.snapshot.phase == .halfOpen)
        }
    }

    /// A circuit that refuses gives the reservation back.
    @Test func aCircuitRefusalReleasesTheHold() async throws {
        try await with(aPulls: 1) { f in
            f.open(0)
            var walk = f.walk(Self.get)
            #expect(await walk.next()?.name == "b")
            let status = await f.pool.budgetStatus(f.upstreams[0])
            #expect(status?.remaining == 1, "the skipped upstream's pull stayed held: \(String(describing: status))")
        }
    }

    /// An upstream admitted and then not sent to gives its hold back on the next step.
    @Test func anUnsentHoldIsReleased() async throws {
        try await with(aPulls: 1) { f in
            var walk = f.walk(Self.get)
            #expect(await walk.next()?.name == "a")
            #expect(await f.pool.budgetStatus(f.upstreams[0])?.remaining == 0)
            #expect(await walk.next()?.name == "b")
            #expect(await f.pool.budgetStatus(f.upstreams[0])?.remaining == 1)
        }
    }

    /// Every circuit open: the walk tries them anyway, in order (panic routing).
    @Test func everyCircuitOpenTriesThemAnywayInOrder() async throws {
        try await with { f in
            f.open(0)
            f.open(1)
            f.open(2)
            var walk = f.walk(Self.get)
            var names: [String] = []
            while let next = await walk.next() {
                names.append(next.name)
                walk.fail(next, .init(.connection, "connection failed: refused"))
            }
            #expect(names == ["a", "b", "c"])
            // The client hears what the upstreams did, not "circuit open".
            let error = walk.clientError(notFound: RegistryError(.manifestUnknown, "unknown"))
            #expect(error.status == 502)
            #expect(!error.message.contains("circuit open"), "\(error.message)")
        }
    }

    /// Not every circuit open: no panic pass; the open ones stay skipped.
    @Test func noPanicWhenSomeUpstreamWasAsked() async throws {
        try await with { f in
            f.open(1)
            f.open(2)
            var walk = f.walk(Self.get)
            #expect(await walk.next()?.name == "a")
            walk.notFound(f.upstreams[0], status: 404)
            #expect(await walk.next() == nil)
            #expect(walk.note == "a: not found (404); b: skipped (circuit open); c: skipped (circuit open)")
        }
    }

    /// A panic pass still respects budgets.
    @Test func thePanicPassKeepsBudgets() async throws {
        try await with(aPulls: 1) { f in
            await f.spendOne(0)
            f.open(1)
            f.open(2)
            var walk = f.walk(Self.get)
            var names: [String] = []
            while let next = await walk.next() {
                names.append(next.name)
                walk.fail(next, .init(.connection, "connection failed: refused"))
            }
            #expect(names == ["b", "c"])
        }
    }

    /// A digest mismatch excludes that upstream for that object (and only that object).
    @Test func aBadCopyIsNotAskedForAgain() async throws {
        try await with { f in
            var first = f.walk(.blob(Self.digest, method: .GET, from: 0))
            let a = try #require(await first.next())
            first.fail(a, .init(.digestMismatch, "digest mismatch"))
            var again = f.walk(.blob(Self.digest, method: .GET, from: 0))
            #expect(await again.next()?.name == "b")
            #expect(again.note?.contains("a: skipped (sent a bad copy of this object") == true, "\(again.note ?? "")")
            let other = Digest(algorithm: .sha256, hex: String(repeating: "b", count: 64))
            var unrelated = f.walk(.blob(other, method: .GET, from: 0))
            #expect(await unrelated.next()?.name == "a" || f.pool.health.breaker(a)!.snapshot.phase != .closed)
        }
    }

    @Test func callerExclusionsAreSkipped() async throws {
        try await with { f in
            var walk = f.walk(Self.get, excluding: [f.upstreams[0].id])
            #expect(await walk.next()?.name == "b")
            #expect(walk.note == "a: skipped (sent a bad copy during this request)")
        }
    }

    /// Every upstream refused for budget: 429 with a Retry-After, never a 5xx.
    @Test func noBudgetAnywhereIs429() async throws {
        try await with(aPulls: 1) { f in
            let key = f.pool.budgetKey(f.upstreams[0])!
            for upstream in f.upstreams {
                await f.pool.ledger.observe(f.pool.budgetKey(upstream)!, answer: BudgetAnswer(status: 429, retryAfter: Date().addingTimeInterval(90)), manifestGET: true, now: Date())
            }
            _ = key
            var walk = f.walk(Self.get)
            #expect(await walk.next() == nil)
            let error = walk.clientError(notFound: RegistryError(.manifestUnknown, "unknown"))
            #expect(error.status == 429)
            #expect(error.headers.first?.0 == "Retry-After")
        }
    }
}
