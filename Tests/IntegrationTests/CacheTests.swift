import Crypto
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The cache with real processes: single-flight blob fetches under 16 concurrent cold pulls,
/// a cold `Range` request, `kill -9` in the middle of a blob and start-up reconciliation,
/// the `storage.max_size` cap (LRU eviction and `mirrorgate gc`), and a full disk.
///
/// Every pull is verified (``VerifiedLayout`` re-hashes each file) and compared with the
/// fixture; every file left under `blobs/` is re-hashed against its name.
@Suite(.serialized)
struct CacheTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    static let MiB = 1 << 20

    /// `<gateway>/v2/<repository>/blobs/<digest>`.
    static func blobURL(_ gateway: GatewayProcess, _ repository: String, _ digest: String) -> String {
        "\(gateway.url)/v2/\(repository)/blobs/\(digest)"
    }

    /// The upstream's logged blob GETs for `repository`, by digest.
    static func blobGETs(_ upstream: UpstreamRegistry, repository: String) -> [String: [RegistryRequest]] {
        Dictionary(grouping: upstream.blobRequests(repository: repository).filter { $0.method == "GET" }) { $0.reference ?? "" }
    }

    static func sha256(_ data: Data) -> String {
        "sha256:" + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    // MARK: - Single flight

    /// 16 `skopeo copy` processes pull the same uncached image at once: each gets every
    /// digest right, and the upstream sees exactly one GET per blob (and one manifest GET).
    @Test func sixteenConcurrentColdPullsFetchEachBlobOnce() async throws {
        let fixture = try ImageFixture.make(
            .ociImage, layerSizes: [4 * Self.MiB, 5 * Self.MiB, 6 * Self.MiB, 8 * Self.MiB], layerFormat: .random)
        let repository = "library/crowd"
        let skopeo = skopeo
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: repository)
            upstream.clearRequests()
            try await GatewayProcess.with(.upstreams([upstream.url])) { gateway in
                let results = await withTaskGroup(of: Result<Set<String>, any Error>.self) { group in
                    for _ in 0..<16 {
                        group.addTask {
                            do {
                                // Keep only the digests: the layout is deleted as soon as it is checked.
                                return .success(try await skopeo.pull(from: gateway.hostPort, repository: repository, reference: fixture.tag).allDigests)
                            } catch {
                                return .failure(error)
                            }
                        }
                    }
                    var all: [Result<Set<String>, any Error>] = []
                    for await result in group { all.append(result) }
                    return all
                }
                #expect(results.count == 16)
                for result in results {
                    switch result {
                    case .success(let digests): #expect(digests == fixture.allDigests)
                    case .failure(let error): Issue.record("a concurrent pull failed: \(error)\n\(gateway.logTail(lines: 30))")
                    }
                }

                // The access log line is written after the response: wait, then settle, then count.
                _ = try? await upstream.waitForRequests(count: fixture.blobDigests.count, timeout: .seconds(5)) {
                    $0.method == "GET" && $0.isBlob
                }
                try await Task.sleep(for: .milliseconds(500))
                let gets = Self.blobGETs(upstream, repository: repository)
                for blob in fixture.blobs {
                    #expect(gets[blob.digest]?.count == 1, "\(blob): \(gets[blob.digest] ?? []) upstream GETs, want exactly 1")
                }
                #expect(Set(gets.keys) == Set(fixture.blobDigests), "unexpected blob GETs: \(gets.keys.sorted())")
                let manifestGETs = upstream.manifestRequests(repository: repository).filter { $0.method == "GET" }
                #expect(manifestGETs.count == 1, "manifest GETs upstream: \(manifestGETs)")

                let cache = CacheInspection(gateway)
                #expect(fixture.allDigests.isSubset(of: cache.blobDigests()), "not everything was cached: \(cache.blobFiles())")
                #expect(cache.verifyBlobs() == [])
                #expect(await eventually(timeout: .seconds(5)) { cache.temporaryFiles().isEmpty }, "tmp/: \(cache.temporaryFiles())")
            }
        }
    }

    // MARK: - Cold range

    /// A `Range` request for an uncached blob is answered (206) from the fetch of the whole
    /// blob, which a following pull joins or finds cached: one upstream GET in all.
    @Test func coldRangeThenFullPullFetchesTheBlobOnce() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [32 * Self.MiB], layerFormat: .random)
        let layer = try #require(fixture.layers.first)
        let bytes = try #require(fixture.bytes(of: layer.digest))
        let repository = "library/ranged"
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: repository)
            upstream.clearRequests()
            try await GatewayProcess.with(.upstreams([upstream.url])) { gateway in
                let ranged = try await HTTPFetch.get(
                    Self.blobURL(gateway, repository, layer.digest), headers: [("Range", "bytes=1000-1999")])
                #expect(ranged.status == 206, "\(ranged.status): \(ranged.text.prefix(300))")
                #expect(ranged.header("Content-Range") == "bytes 1000-1999/\(layer.size)")
                #expect(ranged.body.count == 1000)
                #expect(ranged.body == Data(bytes[bytes.startIndex + 1000 ..< bytes.startIndex + 2000]), "wrong bytes in the 206 body")

                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: repository, reference: fixture.tag)
                #expect(pulled.allDigests == fixture.allDigests)

                _ = try? await upstream.waitForRequests(count: 1, timeout: .seconds(5)) {
                    $0.method == "GET" && $0.isBlob && $0.reference == layer.digest
                }
                try await Task.sleep(for: .milliseconds(500))
                let gets = Self.blobGETs(upstream, repository: repository)[layer.digest] ?? []
                #expect(gets.count == 1, "upstream GETs of the layer: \(gets)")
                #expect(gets.allSatisfy { $0.status == 200 }, "the gateway should fetch the whole blob: \(gets)")

                let cache = CacheInspection(gateway)
                #expect(cache.contains(layer.digest), "the blob fetched for the range request was not cached")
                #expect(cache.verifyBlobs() == [])
            }
        }
    }

    // MARK: - kill -9 and start-up reconciliation

    /// SIGKILL while a 96 MiB blob streams into tmp/; meanwhile the cache is tampered with (a
    /// row loses its file, a wrong file and an unrecorded right file appear under blobs/).
    /// After a restart tmp/ is empty, the wrong file is gone, the right one is adopted, the
    /// pull is correct, and every file under blobs/ hashes to its name.
    @Test func killDashNineDuringABlobLeavesAVerifiedCache() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [96 * Self.MiB, 1 * Self.MiB], layerFormat: .random)
        let big = try #require(fixture.layers.max { $0.size < $1.size })
        let small = try #require(fixture.layers.min { $0.size < $1.size })
        let config = try #require(fixture.blobs.first { blob in !fixture.layers.contains { $0.digest == blob.digest } })
        let configBytes = try #require(fixture.bytes(of: config.digest))
        let repository = "library/crash"
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: repository)
            try await GatewayProcess.with(.upstreams([upstream.url])) { gateway in
                let cache = CacheInspection(gateway)

                // A cached blob with its row.
                let first = try await HTTPFetch.get(Self.blobURL(gateway, repository, small.digest))
                #expect(first.status == 200)
                #expect(Self.sha256(first.body) == small.digest)
                #expect(await eventually(timeout: .seconds(5)) {
                    (try? await cache.objectRows().contains { $0.digest == small.digest }) == true
                }, "no objects row for \(small.digest)")
                #expect(cache.contains(small.digest))

                // The big blob, with the upstream throttled (SIGSTOP most of the time, well
                // under the stall timeout) so that the gateway dies in the middle of it.
                let fetch = Task { try await HTTPFetch.get(Self.blobURL(gateway, repository, big.digest), timeout: .seconds(120)) }
                var seen = 0
                let deadline = ContinuousClock.now + .seconds(30)
                while ContinuousClock.now < deadline {
                    upstream.kill(signal: SIGSTOP)
                    try? await Task.sleep(for: .milliseconds(60))
                    upstream.kill(signal: SIGCONT)
                    try? await Task.sleep(for: .milliseconds(4))
                    seen = cache.temporaryBytes()
                    if seen >= 4 * Self.MiB {
                        gateway.kill(signal: SIGKILL)
                        break
                    }
                }
                upstream.kill(signal: SIGCONT)
                #expect(seen >= 4 * Self.MiB, "tmp/ never held 4 MiB of the in-flight blob: \(cache.temporaryFiles())")
                gateway.kill(signal: SIGKILL)
                #expect(await eventually(timeout: .seconds(10)) { !gateway.isRunning }, "the gateway survived SIGKILL")
                if let response = try? await fetch.value {
                    Issue.record("the client got a complete answer (\(response.status), \(response.body.count) bytes) from a gateway killed mid-blob")
                }
                let leftovers = cache.temporaryFiles()
                #expect(!leftovers.isEmpty, "no partial file in tmp/ after the kill")
                #expect(leftovers.allSatisfy { $0.size < big.size }, "tmp/ after the kill: \(leftovers)")
                #expect(!cache.contains(big.digest), "an incomplete blob reached blobs/")

                // The other half: a row without its file, a wrong file without a row, and a
                // right file without a row.
                try FileManager.default.removeItem(at: cache.blobPath(small.digest))
                let wrongDigest = Self.sha256(Data("not the content \(UUID())".utf8))
                try cache.plantBlob(OCILayoutBuilder.randomBytes(count: 256 << 10), as: wrongDigest)
                try cache.plantBlob(configBytes, as: config.digest)

                try await gateway.restart()
                #expect(await eventually(timeout: .seconds(5)) { cache.temporaryFiles().isEmpty }, "tmp/ after restart: \(cache.temporaryFiles())")
                let wrongRemoved = await eventually(timeout: .seconds(10)) {
                    !FileManager.default.fileExists(atPath: cache.blobPath(wrongDigest).path)
                }
                #expect(wrongRemoved, "a file under blobs/ that does not hash to its name survived the restart\n\(gateway.logTail(lines: 20))")
                #expect(cache.contains(config.digest), "a file that matches its name was removed at start-up")
                var rows: [CacheInspection.ObjectRow] = []
                let reconciled = await eventually(timeout: .seconds(5), interval: .milliseconds(250)) {
                    rows = (try? await cache.objectRows()) ?? []
                    return !rows.contains { $0.digest == small.digest } && rows.contains { $0.digest == config.digest }
                }
                #expect(reconciled, "objects rows after restart: \(rows)")
                #expect(!rows.contains { $0.digest == small.digest }, "the row of a missing file was kept")
                #expect(rows.first { $0.digest == config.digest }?.size == config.size, "the unrecorded right file was not adopted")
                #expect(!rows.contains { $0.digest == wrongDigest })

                // Pull again: correct digests; tmp/ empty; everything under blobs/ verified.
                upstream.clearRequests()
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: repository, reference: fixture.tag)
                #expect(pulled.allDigests == fixture.allDigests)
                #expect(await eventually(timeout: .seconds(5)) { cache.temporaryFiles().isEmpty }, "tmp/ after the pull: \(cache.temporaryFiles())")
                #expect(cache.verifyBlobs() == [])
                #expect(fixture.allDigests.isSubset(of: cache.blobDigests()), "not cached after the pull: \(cache.blobFiles())")

                _ = try? await upstream.waitForRequests(count: 2, timeout: .seconds(5)) { $0.method == "GET" && $0.isBlob }
                try await Task.sleep(for: .milliseconds(300))
                let gets = Self.blobGETs(upstream, repository: repository)
                #expect(gets[big.digest]?.count == 1, "big layer GETs after restart: \(gets[big.digest] ?? [])")
                #expect(gets[small.digest]?.count == 1, "the layer whose file was deleted: \(gets[small.digest] ?? [])")
                #expect(gets[config.digest] == nil, "the adopted config was fetched again: \(gets[config.digest] ?? [])")
            }
        }
    }

    // MARK: - Size cap

    /// `storage.max_size: 64MiB` and six ~32 MiB images pulled one after another: after each
    /// pull the background pass brings blobs/ back under the cap, the newest image stays
    /// cached, metadata and files agree, evicted content is fetched again, and
    /// `mirrorgate gc` runs a pass and reports what it freed.
    @Test func cacheCappedAt64MiBStaysUnderTheCap() async throws {
        let cap = 64 * Self.MiB
        let fixtures = try (1...6).map {
            try ImageFixture.make(.ociImage, tag: "v\($0)", layerSizes: [16 * Self.MiB, 16 * Self.MiB], layerFormat: .random)
        }
        let repository = "library/capped"
        try await UpstreamRegistry.with { upstream in
            for fixture in fixtures {
                try await skopeo.push(fixture, to: upstream.hostPort, repository: repository)
            }
            var config = GatewayConfig.upstreams([upstream.url])
            config.maxSize = "64MiB"
            try await GatewayProcess.with(config) { gateway in
                let cache = CacheInspection(gateway)
                var peak = 0
                var evicting = true  // after one miss, do not wait the full time again
                for (index, fixture) in fixtures.enumerated() {
                    let pulled = try await skopeo.pull(from: gateway.hostPort, repository: repository, reference: fixture.tag)
                    #expect(pulled.allDigests == fixture.allDigests, "pull \(index + 1)")
                    peak = max(peak, cache.blobBytes())
                    let under = await eventually(timeout: evicting ? .seconds(10) : .seconds(1), interval: .milliseconds(200)) {
                        cache.blobBytes() <= cap
                    }
                    if !under { evicting = false }
                    #expect(under, "after pull \(index + 1) of 6, blobs/ holds \(cache.blobBytes()) bytes (cap \(cap))")
                }

                // The final state, strictly, after a settle.
                try await Task.sleep(for: .seconds(1))
                let total = cache.blobBytes()
                #expect(total <= cap, "blobs/ holds \(total) bytes (cap \(cap); peak seen \(peak))\n\(gateway.logTail(lines: 20))")
                let newest = try #require(fixtures.last)
                #expect(newest.allDigests.isSubset(of: cache.blobDigests()), "the most recently pulled image was evicted")
                #expect(cache.verifyBlobs() == [])
                let rows = try await cache.objectRows()
                #expect(Set(rows.map(\.digest)) == cache.blobDigests(), "objects rows and blobs/ differ: rows \(rows.map(\.digest).sorted()), files \(cache.blobDigests().sorted())")

                // Pulls keep working; what was evicted is fetched again.
                let oldest = fixtures[0]
                let evicted = oldest.layers.filter { !cache.contains($0.digest) }
                upstream.clearRequests()
                let again = try await skopeo.pull(from: gateway.hostPort, repository: repository, reference: oldest.tag)
                #expect(again.allDigests == oldest.allDigests)
                if !evicted.isEmpty {
                    _ = try? await upstream.waitForRequests(count: evicted.count, timeout: .seconds(5)) { $0.method == "GET" && $0.isBlob }
                    let gets = Self.blobGETs(upstream, repository: repository)
                    for layer in evicted {
                        #expect(gets[layer.digest]?.count == 1, "evicted \(layer.digest) was not fetched again once: \(gets[layer.digest] ?? [])")
                    }
                }
                #expect(await eventually(timeout: evicting ? .seconds(10) : .seconds(1), interval: .milliseconds(200)) {
                    cache.blobBytes() <= cap
                }, "after pulling the oldest image again, blobs/ holds \(cache.blobBytes()) bytes")

                // `mirrorgate gc` next to the running gateway.
                let binary = try GatewayProcess.locateBinary()
                let gc = try await ManagedProcess.run(binary, arguments: ["gc", "--config", gateway.configURL.path], timeout: .seconds(60))
                let gcOutput = gc.stdoutText + gc.stderr
                #expect(gc.succeeded, "mirrorgate gc exited \(gc.status): \(gcOutput)")
                #expect(gcOutput.contains("freed"), "mirrorgate gc output: \(gcOutput)")
                #expect(cache.blobBytes() <= cap)

                // And on the stopped gateway's storage with a smaller cap: it really evicts.
                await gateway.stop()
                var smaller = gateway.config
                smaller.maxSize = "16MiB"
                let smallerURL = gateway.directory.appending("gateway-16MiB.yaml")
                try smaller.render().write(to: smallerURL, atomically: true, encoding: .utf8)
                let before = cache.blobBytes()
                let gc16 = try await ManagedProcess.run(binary, arguments: ["gc", "--config", smallerURL.path], timeout: .seconds(60))
                let gc16Output = gc16.stdoutText + gc16.stderr
                #expect(gc16.succeeded, "mirrorgate gc (16MiB) exited \(gc16.status): \(gc16Output)")
                #expect(gc16Output.contains("freed"), "mirrorgate gc (16MiB) output: \(gc16Output)")
                #expect(cache.blobBytes() <= 16 * Self.MiB, "after gc with a 16MiB cap blobs/ holds \(cache.blobBytes()) bytes (before: \(before))")
                #expect(cache.verifyBlobs() == [])
                let rowsAfter = try await cache.objectRows()
                #expect(Set(rowsAfter.map(\.digest)) == cache.blobDigests(), "objects rows and blobs/ differ after gc")
            }
        }
    }

    /// Issue 12: with a working set three times `max_size` and repeated pulls, the upstream
    /// saw a manifest GET (a Docker Hub pull) for the same manifests over and over, because
    /// eviction took manifests along with blobs. Blobs go first now: manifest GETs stay at the
    /// number of distinct manifests, and tag HEADs within the TTL at zero.
    @Test func cachePressureNeverSpendsTheSameManifestTwice() async throws {
        let fixtures = try (1...6).map {
            try ImageFixture.make(.ociIndex, tag: "v\($0)", layerSizes: [2 * Self.MiB, 2 * Self.MiB], layerFormat: .random)
        }
        let repository = "library/pressure"
        try await UpstreamRegistry.with { upstream in
            for fixture in fixtures {
                try await skopeo.push(fixture, to: upstream.hostPort, repository: repository)
            }
            upstream.clearRequests()
            var config = GatewayConfig.upstreams([upstream.url])
            config.maxSize = "16MiB"  // the working set is 48 MiB of layers
            try await GatewayProcess.with(config) { gateway in
                let cache = CacheInspection(gateway)
                for round in 1...3 {
                    for fixture in fixtures {
                        let pulled = try await skopeo.pull(from: gateway.hostPort, repository: repository, reference: fixture.tag)
                        #expect(pulled.allDigests == fixture.allDigests, "round \(round), \(fixture.tag)")
                    }
                }
                #expect(await eventually(timeout: .seconds(10), interval: .milliseconds(200)) { cache.blobBytes() <= 16 * Self.MiB })
                let distinct = Set(fixtures.flatMap(\.manifestDigests))
                let gets = upstream.requests().filter { $0.method == "GET" && $0.path.contains("/manifests/") }
                #expect(gets.count == distinct.count, "\(gets.count) manifest GETs for \(distinct.count) distinct manifests")
                let tagHEADs = upstream.requests().filter { $0.method == "HEAD" && $0.path.contains("/manifests/v") }
                #expect(tagHEADs.count == fixtures.count, "tag HEADs within the TTL: \(tagHEADs.count) for \(fixtures.count) tags")
            }
        }
    }

    // MARK: - Full disk

    /// Storage on a 24 MiB tmpfs and an image of 3 × 12 MiB: the pull succeeds, verified, as
    /// a pass-through, and the log says why nothing is cached; once the file system is made
    /// bigger, a later pull caches again.
    @Test(.enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
    func fullDiskKeepsServing() async throws {
        let mountPoint = try TemporaryDirectory(prefix: "mirrorgate-tinyfs")
        try await Self.mountTmpfs(at: mountPoint.url, options: "size=24m")
        defer { Self.unmount(mountPoint.url) }
        var fs = statvfs()
        #expect(statvfs(mountPoint.path, &fs) == 0)
        let capacity = Int(fs.f_blocks) * Int(fs.f_frsize)
        try #require(capacity <= 24 * Self.MiB, "the tmpfs at \(mountPoint.path) has \(capacity) bytes")

        let fixture = try ImageFixture.make(.ociImage, layerSizes: [12 * Self.MiB, 12 * Self.MiB, 12 * Self.MiB], layerFormat: .random)
        let repository = "library/fat"
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: repository)
            var config = GatewayConfig.upstreams([upstream.url])
            config.storagePath = mountPoint.appending("data", isDirectory: true).path
            try await GatewayProcess.with(config) { gateway in
                let cache = CacheInspection(gateway)
                do {
                    let pulled = try await skopeo.pull(from: gateway.hostPort, repository: repository, reference: fixture.tag)
                    #expect(pulled.allDigests == fixture.allDigests)
                } catch {
                    Issue.record("pull with a full cache disk failed: \(error)\n\(gateway.logTail(lines: 30))")
                }
                let log = gateway.logText().lowercased()
                #expect(
                    ["no space left", "enospc", "disk full", "storage is full", "do not fit the cache's free space"].contains { log.contains($0) },
                    "the log does not mention the full disk\n\(gateway.logTail(lines: 30))")
                #expect(!fixture.layers.allSatisfy { cache.contains($0.digest) }, "36 MiB of layers cached on a 24 MiB file system?")
                #expect(cache.verifyBlobs() == [])

                // Space returns: a later pull caches again (the gateway notices by itself).
                try await Self.mountTmpfs(at: mountPoint.url, options: "remount,size=160m")
                var cachedAgain = false
                var lastError: (any Error)?
                let deadline = ContinuousClock.now + .seconds(30)
                while !cachedAgain, ContinuousClock.now < deadline {
                    do {
                        let pulled = try await skopeo.pull(from: gateway.hostPort, repository: repository, reference: fixture.tag)
                        #expect(pulled.allDigests == fixture.allDigests)
                        lastError = nil
                    } catch {
                        lastError = error
                    }
                    cachedAgain = fixture.allDigests.isSubset(of: cache.blobDigests())
                    if !cachedAgain { try await Task.sleep(for: .seconds(1)) }
                }
                #expect(lastError == nil, "pull after space returned failed: \(String(describing: lastError))\n\(gateway.logTail(lines: 30))")
                #expect(cachedAgain, "nothing cached 30 s after space returned: \(cache.blobFiles())\n\(gateway.logTail(lines: 30))")
                #expect(cache.verifyBlobs() == [])
                #expect(await eventually(timeout: .seconds(5)) { cache.temporaryFiles().isEmpty }, "tmp/: \(cache.temporaryFiles())")
            }
        }
    }

    /// Three 9 MiB blobs fetched at once (two clients each) into a 24 MiB file system: each
    /// fits on its own (its size plus the gateway's free-space margin), together they do not,
    /// so fetches meet ENOSPC in the middle. Every client must still get its whole blob,
    /// verified, and nothing unverified may be left in the cache; a second round (pass-through
    /// mode by then) must work too.
    @Test(.enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
    func concurrentFetchesOverflowingTheDiskServeEveryClient() async throws {
        let mountPoint = try TemporaryDirectory(prefix: "mirrorgate-tinyfs")
        try await Self.mountTmpfs(at: mountPoint.url, options: "size=24m")
        defer { Self.unmount(mountPoint.url) }
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [9 * Self.MiB, 9 * Self.MiB, 9 * Self.MiB], layerFormat: .random)
        let repository = "library/overflow"
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: repository)
            var config = GatewayConfig.upstreams([upstream.url])
            config.storagePath = mountPoint.appending("data", isDirectory: true).path
            try await GatewayProcess.with(config) { gateway in
                let cache = CacheInspection(gateway)
                for round in ["first (cold)", "second"] {
                    let failures = await Self.fetchConcurrently(fixture.layers, clientsEach: 2, gateway: gateway, repository: repository)
                    #expect(failures.isEmpty, "\(round) round: \(failures.count) of 6 clients did not get their blob:\n\(failures.joined(separator: "\n"))\n\(gateway.logTail(lines: 14))")
                    #expect(cache.verifyBlobs() == [])
                }
            }
        }
    }

    /// GETs every blob in `blobs` from `clientsEach` concurrent clients; returns one line per
    /// client that did not receive the whole blob with the right digest.
    static func fetchConcurrently(
        _ blobs: [ContentDescriptor], clientsEach: Int, gateway: GatewayProcess, repository: String
    ) async -> [String] {
        await withTaskGroup(of: String?.self) { group in
            for blob in blobs {
                for _ in 0..<clientsEach {
                    group.addTask {
                        do {
                            let response = try await HTTPFetch.get(Self.blobURL(gateway, repository, blob.digest), timeout: .seconds(60))
                            let actual = Self.sha256(response.body)
                            if response.status == 200, actual == blob.digest { return nil }
                            return "\(blob.digest): \(response.status), \(response.body.count) bytes hashing to \(actual)"
                        } catch {
                            return "\(blob.digest): \(error)"
                        }
                    }
                }
            }
            var failures: [String] = []
            for await failure in group { if let failure { failures.append(failure) } }
            return failures
        }
    }

    /// `mount -t tmpfs -o <options> tmpfs <url>` (also used with `remount,…`).
    static func mountTmpfs(at url: URL, options: String) async throws {
        guard let mount = ManagedProcess.which("mount") else { throw ManagedProcess.Failure("mount(8) not found") }
        let result = try await ManagedProcess.run(
            mount, arguments: ["-t", "tmpfs", "-o", options, "tmpfs", url.path], timeout: .seconds(20))
        guard result.succeeded else {
            throw ManagedProcess.Failure("mount -o \(options) \(url.path) failed (\(result.status)): \(result.stderr)")
        }
    }

    /// `umount -l <url>`, synchronously (for `defer`); a no-op when nothing is mounted there.
    static func unmount(_ url: URL) {
        if umount2(url.path, Int32(MNT_DETACH)) != 0, errno != EINVAL, errno != ENOENT {
            print("CacheTests: umount \(url.path) failed: \(String(cString: strerror(errno)))")
        }
    }
}
