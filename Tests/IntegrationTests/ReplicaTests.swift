import Crypto
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Several replicas sharing one PostgreSQL database and one storage directory (issue 15),
/// with real processes: `mirrorgate` ×2–3, PostgreSQL 15, `docker-registry` as the upstream
/// (its access log counts what reached it), and the Hub-style front for a learned 429.
@Suite(.serialized, .enabled(if: PostgresServer.binDirectory != nil, Comment(rawValue: PostgresServer.skipMessage)))
struct ReplicaTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    static let MiB = 1 << 20

    static func manifest(_ gateway: GatewayProcess, _ repository: String, _ reference: String, _ fixture: ImageFixture) async throws -> HTTPFetch.Response {
        try await HTTPFetch.get("\(gateway.url)/v2/\(repository)/manifests/\(reference)", headers: [("Accept", fixture.topMediaType)])
    }

    static func sha256(_ data: Data) -> String {
        "sha256:" + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// Pulls the manifest by tag and every blob over HTTP, checking each digest.
    static func pull(_ gateway: GatewayProcess, _ repository: String, _ fixture: ImageFixture) async throws {
        let top = try await manifest(gateway, repository, fixture.tag, fixture)
        try #require(top.status == 200, "\(gateway.url) \(repository): \(top.status) \(top.text)")
        #expect(top.header("Docker-Content-Digest") == fixture.topDigest)
        for digest in fixture.blobDigests {
            let blob = try await HTTPFetch.get("\(gateway.url)/v2/\(repository)/blobs/\(digest)")
            try #require(blob.status == 200, "\(repository)@\(digest): \(blob.status)")
            #expect(sha256(blob.body) == digest)
        }
    }

    static func manifestGETs(_ upstream: UpstreamRegistry) -> [RegistryRequest] {
        upstream.requests().filter { $0.isManifest && $0.method == "GET" }
    }

    /// The direct children of `pid` (Linux: `/proc/<pid>/task/<pid>/children`).
    static func children(of pid: Int32) -> [Int32] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Polls `condition` every 200 ms until it holds or `timeout` passes (a wait, not a
    /// performance assertion: the result is checked afterwards).
    static func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return try await condition()
    }

    // MARK: - Shared tags and objects

    /// A tag resolved on replica A is served by replica B within its TTL, and the blobs A
    /// cached are served by B from the shared directory, with no upstream request; the answer
    /// lives in PostgreSQL (no replica has a SQLite file).
    @Test func aTagResolvedOnOneReplicaIsServedByTheOther() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [256 << 10])
        let repository = "library/shared"
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: repository)
            try await ReplicaSet.with(.upstreams([upstream.url]), count: 2) { set in
                let (a, b) = (set.replicas[0], set.replicas[1])
                try await Self.pull(a, repository, fixture)
                try await upstream.waitForRequests { $0.isManifest && $0.method == "GET" }
                #expect(try await set.sql("SELECT digest FROM tags WHERE repository = '\(repository)' AND tag = 'v1'") == fixture.topDigest)
                upstream.clearRequests()

                try await Self.pull(b, repository, fixture)
                // The access log is written after each response: give a stray request time to show.
                try await Task.sleep(for: .milliseconds(300))
                #expect(upstream.requests().isEmpty, "B asked the upstream: \(upstream.requests().map(\.description))")
                #expect(!FileManager.default.fileExists(atPath: a.storagePath.appendingPathComponent("metadata.sqlite").path))
                // Each replica spools in a directory of its own.
                let spools = try FileManager.default.contentsOfDirectory(atPath: a.storagePath.appendingPathComponent("tmp/replicas").path)
                #expect(spools.count == 2, "\(spools)")
            }
        }
    }

    // MARK: - Budgets

    /// Three replicas race for 8 new manifests with a budget of 3 manifest GETs: the upstream
    /// never sees more than 3 GETs, and every request refused for lack of budget is a 429
    /// with Retry-After.
    @Test func racingReplicasNeverOverspendTheBudget() async throws {
        let images = try (0..<8).map { _ in try ImageFixture.make(.ociImage, layerSizes: [16 << 10]) }
        try await UpstreamRegistry.with { upstream in
            for (index, image) in images.enumerated() {
                try await skopeo.push(image, to: upstream.hostPort, repository: "library/race\(index)")
            }
            upstream.clearRequests()
            var config = GatewayConfig()
            config.registries = [.init(key: "docker.io", upstreams: [.init(name: "hub", url: upstream.url, extra: ["budget: {pulls: 3, window: 6h}"])])]
            try await ReplicaSet.with(config, count: 3) { set in
                let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                    for (index, image) in images.enumerated() {
                        for replica in set.replicas {
                            group.addTask {
                                let r = try await Self.manifest(replica, "library/race\(index)", "v1", image)
                                return (r.status, r.header("Retry-After"))
                            }
                        }
                    }
                    var all: [(Int, String?)] = []
                    for try await s in group { all.append(s) }
                    return all
                }
                try await Task.sleep(for: .milliseconds(300))
                let gets = Self.manifestGETs(upstream)
                #expect(gets.count <= 3, "\(gets.count) manifest GETs on a budget of 3: \(gets.map(\.description))")
                #expect(gets.count >= 1)
                #expect(statuses.contains { $0.0 == 200 })
                for (status, retryAfter) in statuses where status != 200 {
                    #expect(status == 429)
                    #expect(retryAfter.flatMap(Int.init).map { $0 > 0 } == true)
                }
                #expect(try await set.sql("SELECT count(*) FROM spends") == String(gets.count))
            }
        }
    }

    /// A 429 with Retry-After that replica A ran into blocks replica B too: B sends nothing to
    /// that upstream until it passes and answers 429 with Retry-After itself.
    @Test func aLearned429IsHonouredByTheOtherReplica() async throws {
        let images = try (0..<2).map { _ in try ImageFixture.make(.ociImage, layerSizes: [16 << 10]) }
        try await UpstreamRegistry.with { upstream in
            for (index, image) in images.enumerated() {
                try await skopeo.push(image, to: upstream.hostPort, repository: "library/limited\(index)")
            }
            let front = try await RegistryFront.start(backend: upstream.url)
            do {
                var config = GatewayConfig()
                config.registries = [.init(key: "docker.io", upstreams: [.init(name: "hub", url: front.url)])]
                try await ReplicaSet.with(config, count: 2) { set in
                    let (a, b) = (set.replicas[0], set.replicas[1])
                    try await front.fail(with: 429)
                    let limited = try await Self.manifest(a, "library/limited0", "v1", images[0])
                    #expect(limited.status == 429)
                    try await front.fail(with: 0)
                    let before = try await front.requests().count
                    // B reads the shared blocks on a notification, or at its next poll (1 s).
                    try await Task.sleep(for: .seconds(2))
                    let onB = try await Self.manifest(b, "library/limited1", "v1", images[1])
                    #expect(onB.status == 429, "B did not honour A's 429: \(onB.status)")
                    #expect(onB.header("Retry-After").flatMap(Int.init).map { $0 > 0 && $0 <= 60 } == true)
                    let after = try await front.requests()
                    #expect(after.count == before, "B sent requests to a blocked upstream: \(after.suffix(after.count - before))")
                }
            } catch {
                await front.stop()
                throw error
            }
            await front.stop()
        }
    }

    // MARK: - Losing the database

    /// How the database goes away: it shuts down (connections refused), or it freezes
    /// (SIGSTOP: connections hang, as behind a network partition, and only deadlines help).
    enum Loss: String, CustomStringConvertible, CaseIterable, Sendable {
        case shutdown
        case freeze
        var description: String { rawValue }
    }

    /// PostgreSQL goes away: the cached blob and the tag this replica resolved still serve
    /// with no upstream request, a cached manifest by digest serves on the other replica too, a
    /// manifest that needs a spend is 429 with Retry-After (never an upstream GET), `/readyz`
    /// and the log say the database is down; when PostgreSQL comes back (same data, same port)
    /// the replica recovers by itself and spends again.
    @Test(arguments: Loss.allCases)
    func losingTheDatabaseServesTheCacheAndRecovers(_ loss: Loss) async throws {
        let known = try ImageFixture.make(.ociImage, layerSizes: [128 << 10])
        let fresh = try ImageFixture.make(.ociImage, layerSizes: [16 << 10])
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(known, to: upstream.hostPort, repository: "library/known")
            try await skopeo.push(fresh, to: upstream.hostPort, repository: "library/fresh")
            try await ReplicaSet.with(.upstreams([upstream.url]), count: 2) { set in
                let a = set.replicas[0]
                try await Self.pull(a, "library/known", known)
                try await upstream.waitForRequests { $0.isManifest && $0.method == "GET" }

                // The postmaster and its backends (each connection has one): stopping the
                // postmaster alone would leave open connections answering.
                let pgPID = try #require(set.postgres.pid)
                let frozen = [pgPID] + Self.children(of: pgPID)
                switch loss {
                case .shutdown: await set.postgres.stopServer()
                case .freeze: for pid in frozen { kill(pid, SIGSTOP) }
                }
                // A frozen server must run again before the set stops it.
                defer { if loss == .freeze { for pid in frozen { kill(pid, SIGCONT) } } }
                upstream.clearRequests()
                // Known content serves (the first metadata call may wait out its deadline).
                try await Self.pull(a, "library/known", known)
                // B never served it: by digest, the stored file answers (the index cannot).
                let b = set.replicas[1]
                let byDigest = try await Self.manifest(b, "library/known", known.topDigest, known)
                #expect(byDigest.status == 200, "\(byDigest.status) \(byDigest.text)")
                #expect(byDigest.header("Docker-Content-Digest") == known.topDigest)
                #expect(upstream.requests().filter { $0.method == "GET" }.isEmpty, "\(upstream.requests().map(\.description))")

                let needsSpend = try await Self.manifest(a, "library/fresh", "v1", fresh)
                #expect(needsSpend.status == 429, "\(needsSpend.status) \(needsSpend.text)")
                #expect(needsSpend.header("Retry-After").flatMap(Int.init).map { $0 > 0 } == true)
                try await Task.sleep(for: .milliseconds(300))
                #expect(Self.manifestGETs(upstream).isEmpty, "a manifest GET went out without the shared ledger")

                var ready = try await HTTPFetch.get("\(a.url)/readyz")
                let saysDown = try await Self.eventually {
                    ready = try await HTTPFetch.get("\(a.url)/readyz")
                    return ready.text.contains("shared database unreachable")
                }
                #expect(saysDown, "readyz: \(ready.status) \(ready.text)")
                #expect(ready.status == 200, "a replica that serves its cache stays in the Service")
                #expect(a.logText().contains("PostgreSQL unreachable"))

                switch loss {
                case .shutdown: try await set.postgres.startServer()
                case .freeze: for pid in frozen { kill(pid, SIGCONT) }
                }
                let recovered = try await Self.eventually {
                    ready = try await HTTPFetch.get("\(a.url)/readyz")
                    return ready.text == "ok\n"
                }
                #expect(recovered, "readyz after PostgreSQL returned: \(ready.text)")
                #expect(a.logText().contains("PostgreSQL answers again"))
                let spent = try await Self.manifest(a, "library/fresh", "v1", fresh)
                #expect(spent.status == 200, "\(spent.status) \(spent.text)")
                #expect(spent.header("Docker-Content-Digest") == fresh.topDigest)
                #expect(Self.manifestGETs(upstream).count == 1)
            }
        }
    }

    // MARK: - Eviction

    /// With a small `storage.max_size` and pulls on both replicas, one janitor evicts (the
    /// other never does), the shared cache ends within the cap, and rows, files and links
    /// agree afterwards.
    @Test func oneJanitorEvictsTheSharedCache() async throws {
        let images = try (0..<4).map { _ in try ImageFixture.make(.ociImage, layerSizes: [Self.MiB, Self.MiB], layerFormat: .random) }
        try await UpstreamRegistry.with { upstream in
            for (index, image) in images.enumerated() {
                try await skopeo.push(image, to: upstream.hostPort, repository: "library/big\(index)")
            }
            var config = GatewayConfig.upstreams([upstream.url])
            config.maxSize = "5MiB"
            try await ReplicaSet.with(config, count: 2) { set in
                // Alternate, so that each replica commits past the cap at least once.
                for (index, image) in images.enumerated() {
                    try await Self.pull(set.replicas[index % 2], "library/big\(index)", image)
                }
                let withinCap = try await Self.eventually {
                    (Int(try await set.sql("SELECT COALESCE(sum(size), 0) FROM objects")) ?? .max) <= 5 * Self.MiB
                }
                let size = try await set.sql("SELECT sum(size) FROM objects")
                #expect(withinCap, "cache size: \(size)")
                let evicting = set.replicas.filter { $0.logText().contains("evicted least recently used objects") }
                #expect(evicting.count == 1, "replicas that evicted: \(evicting.count)")

                let blobs = set.replicas[0].storagePath.appendingPathComponent("blobs/sha256")
                func files() -> [String: Int] {
                    var out: [String: Int] = [:]
                    for shard in (try? FileManager.default.contentsOfDirectory(atPath: blobs.path)) ?? [] {
                        for name in (try? FileManager.default.contentsOfDirectory(atPath: blobs.appendingPathComponent(shard).path)) ?? [] {
                            let path = blobs.appendingPathComponent(shard).appendingPathComponent(name).path
                            out["sha256:" + name] = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
                        }
                    }
                    return out
                }
                func rows() async throws -> [String: Int] {
                    var out: [String: Int] = [:]
                    for line in try await set.sql("SELECT digest || ' ' || size FROM objects").split(separator: "\n") {
                        let parts = line.split(separator: " ")
                        out[String(parts[0])] = Int(parts[1])
                    }
                    return out
                }
                let consistent = try await Self.eventually(timeout: .seconds(10)) { try await rows() == files() }
                let finalRows = try await rows()
                #expect(consistent, "rows \(finalRows) vs files \(files())")
                #expect(try await set.sql("SELECT count(*) FROM links WHERE digest NOT IN (SELECT digest FROM objects)") == "0")
                // Whatever is still cached verifies.
                for (digest, _) in files() {
                    let shard = String(digest.dropFirst(7).prefix(2))
                    let data = try Data(contentsOf: blobs.appendingPathComponent(shard).appendingPathComponent(String(digest.dropFirst(7))))
                    #expect(Self.sha256(data) == digest)
                }
                // `mirrorgate gc` next to the running replicas works on the shared database and
                // leaves their spools alone.
                let spools = set.replicas[0].storagePath.appendingPathComponent("tmp/replicas")
                let spoolsBefore = try FileManager.default.contentsOfDirectory(atPath: spools.path)
                let gc = try await MirrorGateCLI.run(["gc", "--config", set.replicas[1].configURL.path])
                #expect(gc.succeeded, "\(MirrorGateCLI.output(gc))")
                #expect(gc.stdoutText.hasPrefix("freed 0 bytes"), "\(gc.stdoutText)")
                #expect(Set(try FileManager.default.contentsOfDirectory(atPath: spools.path)).isSuperset(of: spoolsBefore))
                #expect(try await rows() == files())
            }
        }
    }

    // MARK: - Pull ledger

    /// Pulls made on two replicas land in one ledger: `mirrorgate report --json` on either
    /// counts them all.
    @Test func theReportCountsPullsOfEveryReplica() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [16 << 10])
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/counted")
            try await ReplicaSet.with(.upstreams([upstream.url]), count: 2) { set in
                let (a, b) = (set.replicas[0], set.replicas[1])
                for gateway in [a, a, b] {
                    #expect(try await Self.manifest(gateway, "library/counted", "v1", fixture).status == 200)
                }
                var rows: [PullLedgerReportTests.Row] = []
                let counted = try await Self.eventually(timeout: .seconds(15)) {
                    rows = try await PullLedgerReportTests.report(b, by: "repository")
                    return rows.first?.pulls == 3
                }
                #expect(counted, "report on B: \(rows)")
                #expect(rows.map(\.key) == ["docker.io/library/counted"])
                #expect(try await set.sql("SELECT count(*) FROM ledger_requests WHERE repository = 'library/counted'") == "3")
            }
        }
    }
}
