import Foundation
import Testing

/// No value from an upstream's headers can crash the gateway, now or after a restart
/// (security review, finding 2): `Retry-After: 9223372036854775807` and
/// `ratelimit-remaining: 0;w=9223372036854775807` from ``HostileUpstream``, and a `budgets`
/// row as an older gateway persisted it. Beside the hostile registry `evil.test`, a real
/// `docker-registry` as `docker.io` shows that the gateway keeps serving everyone else.
@Suite(.serialized)
struct HostileHeaderTests {
    /// The bound on any delay an upstream can impose (`RetryAfter.maximum`, also the bound of a
    /// `w=` window): one day.
    static let maxDelay = 86_400
    static let blob = "sha256:" + String(repeating: "b", count: 64)
    static let accept = [("Accept", "application/vnd.oci.image.manifest.v1+json")]

    /// A gateway with `evil.test` → the hostile upstream and `docker.io` → a registry holding
    /// `library/app:v1`; runs `body`, stopping everything afterwards.
    func withGateway(_ body: (GatewayProcess, HostileUpstream, ImageFixture) async throws -> Void) async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [4096])
        let cleanup = ProcessCleanup()
        do {
            let registry = try await UpstreamRegistry.start(name: "honest")
            cleanup.add { await registry.stop() }
            try await Skopeo.locate().push(fixture, to: registry.hostPort, repository: "library/app")
            let hostile = try await HostileUpstream.start()
            cleanup.add { await hostile.stop() }
            var config = GatewayConfig(tagTTL: "0s", healthInterval: "1h", failureThreshold: 100)
            config.registries = [
                .init(key: "docker.io", upstreams: [.init(name: "honest", url: registry.url)]),
                .init(key: "evil.test", upstreams: [.init(name: "hostile", url: hostile.url)]),
            ]
            let gateway = try await GatewayProcess.start(config)
            cleanup.add { await gateway.stop() }
            try await body(gateway, hostile, fixture)
        } catch {
            await cleanup.run()
            throw error
        }
        await cleanup.run()
    }

    /// A 429 answer whose `Retry-After` the gateway bounded; the gateway still runs. (The
    /// answer to the request that met the upstream's own 429 need not carry one.)
    func expectBounded429(
        _ response: HTTPFetch.Response, _ gateway: GatewayProcess, retryAfter required: Bool = true,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(response.status == 429, "\(response.status) \(response.text)", sourceLocation: sourceLocation)
        let value = response.header("Retry-After")
        if required || value != nil {
            let seconds = value.flatMap { Int($0) }
            #expect(seconds.map { (1...Self.maxDelay).contains($0) } == true, "Retry-After: \(value ?? "none")", sourceLocation: sourceLocation)
        }
        #expect(gateway.isRunning, "\(gateway.logTail())", sourceLocation: sourceLocation)
    }

    /// The honest registry still serves through the gateway.
    func expectServing(_ gateway: GatewayProcess, _ fixture: ImageFixture, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let manifest = try await HTTPFetch.get("\(gateway.url)/v2/library/app/manifests/v1", headers: [("Accept", fixture.topMediaType)])
        #expect(manifest.status == 200 && manifest.header("Docker-Content-Digest") == fixture.topDigest, sourceLocation: sourceLocation)
    }

    @Test func aHugeRetryAfterIsBoundedAndSurvivesARestart() async throws {
        try await withGateway { gateway, hostile, fixture in
            let url = "\(gateway.url)/v2/retryafter/x/blobs/\(Self.blob)?ns=evil.test"
            expectBounded429(try await HTTPFetch.get(url), gateway, retryAfter: false)
            expectBounded429(try await HTTPFetch.get(url), gateway)
            #expect(hostile.upstreamRequests().contains { $0.mode == "retryafter" })
            try await expectServing(gateway, fixture)

            // The block was persisted (bounded); the restarted gateway answers from it, unharmed.
            try await gateway.restart()
            expectBounded429(try await HTTPFetch.get(url), gateway)
            expectBounded429(try await HTTPFetch.head("\(gateway.url)/v2/retryafter/y/manifests/latest?ns=evil.test"), gateway)
            try await expectServing(gateway, fixture)
        }
    }

    @Test func aHugeRateLimitWindowIsBoundedAndSurvivesARestart() async throws {
        try await withGateway { gateway, hostile, fixture in
            let url = "\(gateway.url)/v2/rlwindow/x/manifests/latest?ns=evil.test"
            expectBounded429(try await HTTPFetch.get(url, headers: Self.accept), gateway)
            #expect(hostile.upstreamRequests().contains { $0.mode == "rlwindow" && $0.method == "HEAD" })
            try await expectServing(gateway, fixture)
            try await gateway.restart()
            expectBounded429(try await HTTPFetch.get(url, headers: Self.accept), gateway)
            try await expectServing(gateway, fixture)
        }
    }

    /// A `budgets` row as a gateway before the fix wrote it (a block until now + Int.max
    /// seconds, a window of Int.max seconds) and one no version wrote (a REAL where an
    /// integer belongs) load clamped: the first request after the start is answered.
    @Test func anOutOfRangeBudgetRowLoadsClamped() async throws {
        try await withGateway { gateway, hostile, fixture in
            await gateway.stop()
            let key = "\(hostile.url)|anonymous"
            let huge = 9.223372036854776e18
            try await Self.sqlite(gateway, """
                INSERT OR REPLACE INTO budgets
                  (key, learned_limit, learned_remaining, learned_window, learned_at, get_blocked_until, all_blocked_until, last_error)
                  VALUES ('\(key)', 1e30, -1e30, \(huge), \(huge), \(huge), \(huge), '429 on a free request')
                """)
            try await gateway.restart()
            expectBounded429(try await HTTPFetch.get("\(gateway.url)/v2/anything/x/blobs/\(Self.blob)?ns=evil.test"), gateway)
            expectBounded429(try await HTTPFetch.get("\(gateway.url)/v2/anything/x/manifests/v1?ns=evil.test", headers: Self.accept), gateway)
            let status = try await HTTPFetch.get("\(gateway.url)/_mirrorgate/status.json")
            #expect(status.status == 200)
            #expect(gateway.isRunning, "\(gateway.logTail())")
            try await expectServing(gateway, fixture)
        }
    }

    /// Runs one SQL statement on the gateway's `metadata.sqlite` with python3's sqlite3 module
    /// (the same library as the `sqlite3` shell; python3 is already needed by the suite).
    static func sqlite(_ gateway: GatewayProcess, _ sql: String) async throws {
        guard let python = ManagedProcess.which("python3") else { throw ManagedProcess.Failure("python3 is not installed") }
        let script = """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1], timeout=10)
            db.execute(sys.argv[2])
            db.commit()
            db.close()
            """
        let path = CacheInspection(gateway).metadataURL.path
        let result = try await ManagedProcess.run(python, arguments: ["-c", script, path, sql], timeout: .seconds(30))
        guard result.succeeded else { throw ManagedProcess.Failure("sqlite on \(path) failed: \(result.stderr)") }
    }
}
