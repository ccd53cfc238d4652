import Crypto
import Foundation
import Testing

/// Ordered failover with real processes: upstreams killed (SIGKILL) or hung (SIGSTOP) before
/// a pull and in the middle of a blob, upstreams answering 404, 500 and 429, and recovery.
@Suite(.serialized)
struct FailoverTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// Fast health settings so the tests run in seconds.
    static func config(_ urls: [String], threshold: Int = 2) -> GatewayConfig {
        var config = GatewayConfig.upstreams(urls)
        config.healthTimeout = "1s"
        config.healthInterval = "500ms"
        config.failureThreshold = threshold
        return config
    }

    /// Two upstreams holding the same image.
    func withTwoUpstreams(_ fixture: ImageFixture, repository: String, _ body: (UpstreamRegistry, UpstreamRegistry) async throws -> Void) async throws {
        try await UpstreamRegistry.with(name: "up1") { up1 in
            try await UpstreamRegistry.with(name: "up2") { up2 in
                try await skopeo.push(fixture, to: up1.hostPort, repository: repository)
                try await skopeo.push(fixture, to: up2.hostPort, repository: repository)
                try await body(up1, up2)
                up1.kill(signal: SIGCONT)
                up2.kill(signal: SIGCONT)
            }
        }
    }

    @Test func firstUpstreamKilledBeforePull() async throws {
        let fixture = try ImageFixture.make(.ociIndex)
        try await withTwoUpstreams(fixture, repository: "library/app") { up1, up2 in
            try await GatewayProcess.with(Self.config([up1.url, up2.url])) { gateway in
                up1.kill(signal: SIGKILL)
                let start = ContinuousClock.now
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "v1")
                #expect(pulled.allDigests == fixture.allDigests)
                #expect(ContinuousClock.now - start < .seconds(20))
                let log = gateway.logText()
                #expect(log.contains("served_by=up2"))
                #expect(log.contains("up1: connection failed"), "skip reason missing: \(gateway.logTail())")
            }
        }
    }

    @Test func firstUpstreamHungBeforePull() async throws {
        let fixture = try ImageFixture.make(.dockerManifestList)
        try await withTwoUpstreams(fixture, repository: "library/app") { up1, up2 in
            try await GatewayProcess.with(Self.config([up1.url, up2.url])) { gateway in
                up1.kill(signal: SIGSTOP)
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "v1")
                #expect(pulled.allDigests == fixture.allDigests)
                #expect(gateway.logText().contains("up1: timed out"), "\(gateway.logTail())")
                up1.kill(signal: SIGCONT)
            }
        }
    }

    /// An upstream dies or hangs after part of a blob went out: the next upstream continues
    /// with `Range: bytes=N-`, and the client receives one whole, correct blob.
    @Test(arguments: [SIGKILL, SIGSTOP])
    func firstUpstreamFailsDuringABlob(signal: Int32) async throws {
        try await failDuringABlob(signal: signal, nextIgnoresRange: false)
    }

    /// The same, when the next upstream ignores `Range` and sends the whole blob: the first N
    /// bytes of its answer are skipped.
    @Test func nextUpstreamIgnoringRangeIsSkippedForward() async throws {
        try await failDuringABlob(signal: SIGKILL, nextIgnoresRange: true)
    }

    func failDuringABlob(signal: Int32, nextIgnoresRange: Bool) async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [96 << 20], layerFormat: .random)
        let layer = try #require(fixture.layers.first)
        try await withTwoUpstreams(fixture, repository: "library/big") { up1, up2 in
            let front = nextIgnoresRange ? try await RegistryFront.start(backend: up2.url) : nil
            try await front?.ignoreRange(true)
            try await GatewayProcess.with(Self.config([up1.url, front?.url ?? up2.url])) { gateway in
                let temporary = gateway.storagePath.appending(path: "tmp")
                // Slow up1 down by pausing it most of the time (short pauses, well under the
                // stall timeout), then kill or hang it once the gateway has some of the blob.
                let throttle = Task {
                    while !Task.isCancelled {
                        up1.kill(signal: SIGSTOP)
                        try? await Task.sleep(for: .milliseconds(60))
                        up1.kill(signal: SIGCONT)
                        try? await Task.sleep(for: .milliseconds(4))
                        if Self.bytesIn(temporary) > 8 << 20 {
                            up1.kill(signal: signal)
                            return
                        }
                    }
                }
                defer { throttle.cancel() }
                let response = try await HTTPFetch.get("\(gateway.url)/v2/library/big/blobs/\(layer.digest)", timeout: .seconds(120))
                await throttle.value
                #expect(response.status == 200)
                #expect(response.body.count == layer.size)
                #expect("sha256:" + SHA256.hash(data: response.body).map { String(format: "%02x", $0) }.joined() == layer.digest)
                let second = up2.blobRequests(repository: "library/big", digest: layer.digest)
                if nextIgnoresRange {
                    #expect(second.contains { $0.status == 200 }, "\(up2.requests())")
                } else {
                    #expect(second.contains { $0.status == 206 }, "up2 was not asked for the rest with a Range request: \(up2.requests())")
                }
                up1.kill(signal: SIGCONT)
            }
            await front?.stop()
        }
    }

    /// Failures that move on to the next upstream: 404 from an upstream that is not the
    /// last, any 5xx, and 429.
    @Test func upstreamsAnswering404And500And429() async throws {
        let fixtures = [500: try ImageFixture.make(.ociImage), 429: try ImageFixture.make(.ociImage)]
        try await UpstreamRegistry.with(name: "plain") { empty in
            try await UpstreamRegistry.with(name: "holder") { holder in
                for (status, fixture) in fixtures {
                    try await skopeo.push(fixture, to: holder.hostPort, repository: "library/app\(status)")
                }
                let front = try await RegistryFront.start(backend: holder.url)
                // up1 does not hold the images (404), up2 is the front answering as told, up3 serves.
                let config = Self.config([empty.url, front.url, holder.url], threshold: 100)
                try await GatewayProcess.with(config) { gateway in
                    func pull(_ status: Int) async throws {
                        try await front.fail(with: status)
                        let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app\(status)", reference: "v1")
                        #expect(pulled.allDigests == fixtures[status]!.allDigests)
                        #expect(gateway.logText().contains("up2: answered \(status)"), "\(gateway.logTail())")
                    }
                    try await pull(500)
                    #expect(gateway.logText().contains("up1: not found (404)"))
                    #expect(gateway.logText().contains("served_by=up3"))

                    // Every upstream 404 → 404 with the OCI code.
                    try await front.fail(with: 0)
                    let unknown = try await HTTPFetch.get(
                        "\(gateway.url)/v2/library/missing/manifests/v1", headers: [("Accept", "application/vnd.oci.image.manifest.v1+json")])
                    #expect(unknown.status == 404)
                    #expect(try envelopeCode(unknown.body) == "MANIFEST_UNKNOWN")

                    // A 429 also moves on; afterwards the front is left alone until its Retry-After.
                    try await pull(429)
                    try await front.fail(with: 0)
                    func repositoryRequests() async throws -> [String] {
                        try await front.requests().filter { !$0.hasPrefix("GET /v2/ ") }  // health probes are not pulls
                    }
                    let requestsBefore = try await repositoryRequests().count
                    let other = try ImageFixture.make(.ociImage, tag: "v2")
                    try await skopeo.push(other, to: holder.hostPort, repository: "library/app429", tag: "v2")
                    _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/app429", reference: "v2")
                    #expect(try await repositoryRequests().count == requestsBefore, "a rate-limited upstream was asked again before its Retry-After")
                    #expect(gateway.logText().contains("up2: skipped (pull budget spent"))
                }
                // Every upstream failing → 502 within a bounded time, naming each upstream.
                try await front.fail(with: 500)
                try await GatewayProcess.with(Self.config([front.url], threshold: 100)) { gateway in
                    let start = ContinuousClock.now
                    let failed = try await HTTPFetch.get(
                        "\(gateway.url)/v2/library/app500/manifests/v1", headers: [("Accept", "application/vnd.oci.image.manifest.v1+json")])
                    #expect(ContinuousClock.now - start < .seconds(10))
                    #expect(failed.status == 502)
                    #expect(failed.text.contains("up1: answered 500"), "\(failed.text)")
                    // An outage has no code of its own in the spec: the status stays, the code is
                    // that of what was asked for.
                    #expect(try envelopeCode(failed.body) == "MANIFEST_UNKNOWN")
                }
                await front.stop()
            }
        }
    }

    /// After a failover the circuit of the first upstream opens; once it answers again, the
    /// probe closes it and traffic returns to it.
    @Test(arguments: ["SIGCONT", "restart"])
    func trafficReturnsToTheFirstUpstreamAfterRecovery(recovery: String) async throws {
        let first = try ImageFixture.make(.ociImage, tag: "one")
        let second = try ImageFixture.make(.ociImage, tag: "two")
        try await UpstreamRegistry.with(name: "up1") { up1 in
            try await UpstreamRegistry.with(name: "up2") { up2 in
                for registry in [up1, up2] {
                    try await skopeo.push(first, to: registry.hostPort, repository: "library/app", tag: "one")
                    try await skopeo.push(second, to: registry.hostPort, repository: "library/app", tag: "two")
                }
                try await GatewayProcess.with(Self.config([up1.url, up2.url], threshold: 1)) { gateway in
                    up1.kill(signal: recovery == "restart" ? SIGKILL : SIGSTOP)
                    _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "one")
                    #expect(gateway.logText().contains("circuit opened"))
                    if recovery == "restart" {
                        try await up1.restart()
                    } else {
                        up1.kill(signal: SIGCONT)
                    }
                    // Cool-down (1 s) plus a probe interval or two.
                    var closed = false
                    for _ in 0..<40 where !closed {
                        try await Task.sleep(for: .milliseconds(250))
                        closed = gateway.logText().contains("circuit closed")
                    }
                    #expect(closed, "\(gateway.logTail())")
                    up1.clearRequests()
                    let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "two")
                    #expect(pulled.allDigests == second.allDigests)
                    #expect(!up1.manifestRequests(repository: "library/app").isEmpty, "traffic did not return to up1")
                }
            }
        }
    }

    static func bytesIn(_ directory: URL) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.reduce(0) { total, name in
            let attributes = try? FileManager.default.attributesOfItem(atPath: directory.appending(path: name).path)
            return total + ((attributes?[.size] as? Int) ?? 0)
        }
    }
}

/// Per-upstream `prefix` and `resolve: false`.
@Suite(.serialized)
struct UpstreamOptionsTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// With `prefix: dockerhub`, `library/alpine` is requested upstream as
    /// `dockerhub/library/alpine` (Harbor and Artifactory proxy projects).
    @Test func prefixIsPrependedUpstream() async throws {
        let fixture = try ImageFixture.make(.ociImage)
        try await UpstreamRegistry.with(name: "harbor") { harbor in
            try await skopeo.push(fixture, to: harbor.hostPort, repository: "dockerhub/library/alpine")
            var config = GatewayConfig()
            config.registries = [.init(key: "docker.io", upstreams: [.init(name: "harbor", url: harbor.url, extra: ["prefix: dockerhub"])])]
            try await GatewayProcess.with(config) { gateway in
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "alpine", reference: "v1")
                #expect(pulled.allDigests == fixture.allDigests)
                #expect(harbor.requests().filter { $0.path.hasPrefix("/v2/library/") }.isEmpty)
                #expect(!harbor.manifestRequests(repository: "dockerhub/library/alpine").isEmpty)
            }
        }
    }

    /// An upstream with `resolve: false` is never asked for a tag, but serves content by digest
    /// before the upstreams behind it.
    @Test func resolveFalseServesDigestsOnly() async throws {
        let fixture = try ImageFixture.make(.ociIndex)
        try await UpstreamRegistry.with(name: "public-mirror") { mirror in
            try await UpstreamRegistry.with(name: "hub") { hub in
                try await skopeo.push(fixture, to: mirror.hostPort, repository: "library/app")
                try await skopeo.push(fixture, to: hub.hostPort, repository: "library/app")
                mirror.clearRequests()
                hub.clearRequests()
                var config = GatewayConfig()
                config.registries = [.init(key: "docker.io", upstreams: [
                    .init(name: "mirror", url: mirror.url, extra: ["resolve: false"]),
                    .init(name: "hub", url: hub.url),
                ])]
                try await GatewayProcess.with(config) { gateway in
                    let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "v1")
                    #expect(pulled.allDigests == fixture.allDigests)
                    try await mirror.waitForRequests(count: 1, timeout: .seconds(5)) { $0.isBlob }
                    #expect(mirror.manifestRequests(repository: "library/app", reference: "v1").isEmpty, "\(mirror.requests())")
                    #expect(!hub.manifestRequests(repository: "library/app", reference: "v1").isEmpty)
                    #expect(hub.blobRequests(repository: "library/app").isEmpty, "blobs should come from the mirror: \(hub.requests())")
                    #expect(mirror.blobRequests(repository: "library/app").count == fixture.blobDigests.count)
                }
            }
        }
    }
}
