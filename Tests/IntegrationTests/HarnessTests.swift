#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing
import Yams

/// Self-tests of the integration-test harness (Support/): process management,
/// fixtures, skopeo round trips and the real registry (`docker-registry`).
///
/// Needs `docker-registry` and `skopeo` on PATH; `make test` installs them.
@Suite(.serialized)
struct HarnessTests {
    // MARK: - Small helpers

    @Test func freePortsAreDistinctAndBindable() throws {
        let ports = try FreePort.allocate(count: 3)
        #expect(Set(ports).count == 3)
        for port in ports { #expect((1024...65535).contains(port)) }
    }

    @Test func gatewayConfigRendersTheDocumentedShape() throws {
        var config = GatewayConfig(listenPort: 5000, storagePath: "/tmp/data", maxSize: "50GiB")
        config.setRegistry("docker.io", upstreams: [(name: "up1", url: "http://127.0.0.1:6000")])
        config.setRegistry("ghcr.io", upstreams: [(name: "a", url: "http://127.0.0.1:6001"), (name: "b", url: "http://127.0.0.1:6002")])
        let expected = """
            listen: 127.0.0.1:5000
            storage:
              path: /tmp/data
              max_size: 50GiB
            tags:
              ttl: 10m
              serve_stale: true
            default_registry: docker.io
            health:
              interval: 15s
              timeout: 5s
              failure_threshold: 3
            shutdown:
              grace: 0s
            registries:
              docker.io:
                upstreams:
                  - name: up1
                    url: http://127.0.0.1:6000
              ghcr.io:
                upstreams:
                  - name: a
                    url: http://127.0.0.1:6001
                  - name: b
                    url: http://127.0.0.1:6002

            """
        // The same document as libyaml writes it (it does not indent a sequence under its key).
        let document = try #require(try Yams.compose(yaml: expected))
        #expect(config.render() == (try Yams.serialize(node: document)))
        let simple = GatewayConfig.upstreams(["http://127.0.0.1:1", "http://127.0.0.1:2"])
        #expect(simple.registries == [.init(key: "docker.io", upstreams: [.init(name: "up1", url: "http://127.0.0.1:1"), .init(name: "up2", url: "http://127.0.0.1:2")])])
    }

    @Test func gatewayBinaryIsLocated() throws {
        let binary = try GatewayProcess.locateBinary()
        #expect(FileManager.default.isExecutableFile(atPath: binary.path))
        #expect(binary.lastPathComponent == "mirrorgate")
    }

    @Test func accessLogLinesParse() throws {
        let line = #"127.0.0.1 - - [29/Nov/2026:05:00:47 +0000] "GET /v2/library/alpine/manifests/latest?x=1 HTTP/1.1" 404 96 "" "skopeo/1.9.3""#
        let request = try #require(RegistryRequest.parse(line: line))
        #expect(request.method == "GET")
        #expect(request.path == "/v2/library/alpine/manifests/latest")
        #expect(request.uri.hasSuffix("?x=1"))
        #expect(request.status == 404)
        #expect(request.bytes == 96)
        #expect(request.userAgent == "skopeo/1.9.3")
        #expect(request.isManifest && !request.isBlob)
        #expect(request.repository == "library/alpine")
        #expect(request.reference == "latest")
        #expect(RegistryRequest.parse(line: #"{"level":"info","msg":"response completed"}"#) == nil)
    }

    // MARK: - ManagedProcess

    @Test func managedProcessStopsSuspendsAndResumes() async throws {
        let logs = try TemporaryDirectory()
        let sleeper = try ManagedProcess(
            name: "sleep", executable: URL(fileURLWithPath: "/bin/sleep"), arguments: ["300"],
            stdoutLog: logs.appending("sleep.log"))
        let pid = sleeper.pid
        #expect(pid > 0)
        #expect(sleeper.isRunning)
        #if os(Linux)
        // Children must not inherit the worker thread's blocked signals (SIGTERM would not work).
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let blocked = status.split(separator: "\n").first { $0.hasPrefix("SigBlk:") }
        let mask = UInt64(blocked?.split(separator: "\t").last ?? "", radix: 16) ?? .max
        #expect(mask & (1 << (UInt64(SIGTERM) - 1)) == 0, "SIGTERM blocked in child: \(blocked ?? "?")")
        #endif
        sleeper.kill(signal: SIGSTOP)
        sleeper.kill(signal: SIGCONT)
        #expect(sleeper.isRunning)
        let started = ContinuousClock.now
        await sleeper.stop()
        #expect(!sleeper.isRunning)
        #expect(sleeper.exitStatus == SIGTERM, "ended by SIGTERM, not the SIGKILL fallback")
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(kill(pid, 0) != 0, "pid \(pid) still exists")
    }

    @Test func managedProcessEscalatesToSIGKILL() async throws {
        let logs = try TemporaryDirectory()
        // `exec` keeps the ignored SIGTERM disposition, so only SIGKILL ends it.
        let stubborn = try ManagedProcess(
            name: "stubborn", executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: ["-c", "trap '' TERM; echo ready; exec sleep 300"],
            stdoutLog: logs.appending("stubborn.log"))
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        await stubborn.stop(grace: .milliseconds(300))
        #expect(!stubborn.isRunning)
        #expect(stubborn.wasSignaled)
        #expect(stubborn.exitStatus == SIGKILL)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(stubborn.stdoutText().contains("ready"))
    }

    @Test func managedProcessDeinitStopsTheChild() async throws {
        let logs = try TemporaryDirectory()
        var pid: Int32 = 0
        do {
            let orphan = try ManagedProcess(
                name: "orphan", executable: URL(fileURLWithPath: "/bin/sleep"), arguments: ["300"],
                stdoutLog: logs.appending("orphan.log"))
            pid = orphan.pid
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(kill(pid, 0) != 0, "pid \(pid) survived its ManagedProcess")
    }

    @Test func oneShotCommandsReportStatusAndOutput() async throws {
        let ok = try await ManagedProcess.run(URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", "printf hello; echo oops >&2"])
        #expect(ok.succeeded)
        #expect(ok.stdoutText == "hello")
        #expect(ok.stderr == "oops\n")
        let failed = try await ManagedProcess.run(URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", "exit 3"])
        #expect(failed.status == 3 && !failed.succeeded)
    }

    // MARK: - Fixtures

    @Test func layersAreRealGzippedTarsMatchingTheirDiffIDs() async throws {
        var builder = OCILayoutBuilder()
        let (layer, diffID) = builder.addLayer(size: 300_000, style: .oci)
        let data = try #require(builder.contents[layer.digest])
        #expect(layer.mediaType == OCILayoutBuilder.MediaType.ociLayerTarGzip)
        let scratch = try TemporaryDirectory()
        let file = scratch.appending("layer.tar.gz")
        try data.write(to: file)
        let listing = try await ManagedProcess.run(URL(fileURLWithPath: "/bin/tar"), arguments: ["-tvzf", file.path])
        #expect(listing.succeeded, "\(listing.stderr)")
        #expect(listing.stdoutText.contains("300000"), "\(listing.stdoutText)")
        let sum = try await ManagedProcess.run(URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", "gzip -dc '\(file.path)' | sha256sum"])
        #expect(sum.succeeded, "\(sum.stderr)")
        #expect("sha256:" + (sum.stdoutText.split(separator: " ").first.map(String.init) ?? "") == diffID)
    }

    @Test(arguments: ImageFixture.Kind.allCases)
    func fixtureLayoutsVerify(kind: ImageFixture.Kind) throws {
        let fixture = try ImageFixture.make(kind, layerSizes: [64 << 10])
        let layout = try Skopeo.verifyLayout(fixture.directory)
        #expect(layout.format == fixture.layoutFormat)
        #expect(layout.topDigests == [fixture.topDigest])
        #expect(layout.allDigests == fixture.allDigests)
        #expect(layout.unreferencedDigests.isEmpty)
        #expect(fixture.manifests.count == (kind.isMultiPlatform ? 3 : 1))
        #expect(fixture.blobs.count == (kind.isMultiPlatform ? 4 : 2))
        #expect(fixture.children.map(\.platform) == (kind.isMultiPlatform ? [.linuxAMD64, .linuxARM64] : []))
    }

    @Test func verifyLayoutRejectsTamperedOrMissingContent() throws {
        let oci = try ImageFixture.make(.ociImage, layerSizes: [64 << 10])
        let layer = try #require(oci.layers.first)
        try OCILayoutBuilder.randomBytes(count: layer.size)
            .write(to: oci.directory.appendingPathComponent("blobs/sha256/\(layer.hex)"))
        #expect(throws: VerifiedLayout.Failure.self) { try Skopeo.verifyLayout(oci.directory) }

        let docker = try ImageFixture.make(.dockerManifestList, layerSizes: [64 << 10])
        let child = try #require(docker.children.last)
        try FileManager.default.removeItem(at: docker.directory.appendingPathComponent("\(child.hex).manifest.json"))
        #expect(throws: VerifiedLayout.Failure.self) { try Skopeo.verifyLayout(docker.directory) }
    }

    // MARK: - Registry round trips

    @Test(arguments: ImageFixture.Kind.allCases)
    func pushAndPullRoundTripsEveryDigest(kind: ImageFixture.Kind) async throws {
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(kind, tag: "v1", layerSizes: [64 << 10, 1 << 20])
        try await UpstreamRegistry.with { registry in
            let repository = "library/\(kind.rawValue.lowercased())"
            try await skopeo.push(fixture, to: registry.hostPort, repository: repository)
            try await registry.waitForRequests {
                $0.method == "PUT" && $0.path == "/v2/\(repository)/manifests/v1" && $0.status == 201
            }
            // Every blob landed where blobPath says.
            for digest in fixture.allDigests {
                #expect(FileManager.default.fileExists(atPath: registry.blobPath(digest).path), "\(digest)")
            }
            registry.clearRequests()

            // By tag, into a dir: layout (any media type).
            let byTag = try await skopeo.pull(from: registry.hostPort, repository: repository, reference: "v1")
            #expect(byTag.topDigest == fixture.topDigest)
            #expect(byTag.allDigests == fixture.allDigests)
            for (digest, size) in fixture.sizes { #expect(byTag.sizes[digest] == size) }

            // By digest.
            let byDigest = try await skopeo.pull(from: registry.hostPort, repository: repository, reference: fixture.topDigest)
            #expect(byDigest.allDigests == fixture.allDigests)

            // Into an OCI layout, for OCI media types.
            if kind.style == .oci {
                let oci = try await skopeo.pull(from: registry.hostPort, repository: repository, reference: "v1", format: .oci)
                #expect(oci.format == .oci)
                #expect(oci.topDigests == [fixture.topDigest])
                #expect(oci.allDigests == fixture.allDigests)
            }

            // One platform only, as `docker pull` on amd64 would.
            let amd64 = try await skopeo.pull(
                from: registry.hostPort, repository: repository, reference: "v1", platform: .linuxAMD64)
            let expectedTop = kind.isMultiPlatform ? fixture.children[0].digest : fixture.topDigest
            #expect(amd64.topDigest == expectedTop)

            // inspect --raw returns the exact bytes.
            let raw = try await skopeo.inspectRaw(hostPort: registry.hostPort, repository: repository, reference: "v1")
            #expect(raw == fixture.bytes(of: fixture.topDigest))

            // The access log shows the manifest GETs.
            let tagGets = try await registry.waitForRequests {
                $0.method == "GET" && $0.path == "/v2/\(repository)/manifests/v1" && $0.status == 200
            }
            #expect(tagGets.count >= 3)
            #expect(tagGets.allSatisfy { $0.userAgent.hasPrefix("skopeo/") })
            #expect(!registry.requests(method: "GET", path: "/v2/\(repository)/manifests/\(fixture.topDigest)").isEmpty)
            if kind.isMultiPlatform {
                for child in fixture.children {
                    #expect(!registry.manifestRequests(repository: repository, reference: child.digest).isEmpty)
                }
            }
            for layer in fixture.layers {
                #expect(registry.blobRequests(repository: repository, digest: layer.digest).contains { $0.method == "GET" && $0.status == 200 })
            }
        }
    }

    @Test func registrySurvivesStopContinueKillAndRestart() async throws {
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [64 << 10])
        try await UpstreamRegistry.with { registry in
            try await skopeo.push(fixture, to: registry.hostPort, repository: "test/restart")
            let firstPID = try #require(registry.pid)

            registry.kill(signal: SIGSTOP)
            // Let the stop take effect (the signal is asynchronous to the sender).
            try await Task.sleep(for: .milliseconds(100))
            await #expect(throws: (any Error).self) {
                _ = try await HTTPFetch.get("\(registry.url)/v2/", timeout: .milliseconds(500))
            }
            registry.kill(signal: SIGCONT)
            #expect(try await HTTPFetch.get("\(registry.url)/v2/").status == 200)

            registry.kill(signal: SIGKILL)
            try await Task.sleep(for: .milliseconds(200))
            #expect(!registry.isRunning)
            #expect(kill(firstPID, 0) != 0)

            try await registry.restart()
            #expect(registry.pid != firstPID)
            let pulled = try await skopeo.pull(from: registry.hostPort, repository: "test/restart", reference: "v1")
            #expect(pulled.allDigests == fixture.allDigests)
        }
    }

    @Test func corruptingABlobFileIsServedAndCaughtBySkopeo() async throws {
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.dockerImage, layerSizes: [128 << 10])
        try await UpstreamRegistry.with { registry in
            try await skopeo.push(fixture, to: registry.hostPort, repository: "test/corrupt")
            let layer = try #require(fixture.layers.first)
            let path = registry.blobPath(layer.digest)
            try OCILayoutBuilder.randomBytes(count: layer.size).write(to: path)

            let response = try await HTTPFetch.get("\(registry.url)/v2/test/corrupt/blobs/\(layer.digest)")
            #expect(response.status == 200)
            #expect(response.body.count == layer.size)
            #expect(response.header("Docker-Content-Digest") == layer.digest)
            #expect(ContentDescriptor.sha256(of: response.body) != layer.digest)

            await #expect(throws: Skopeo.Failure.self) {
                _ = try await skopeo.pull(from: registry.hostPort, repository: "test/corrupt", reference: "v1")
            }
        }
    }

    @Test func proxyModeRegistryPullsThroughFromAnUpstream() async throws {
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.dockerManifestList, layerSizes: [64 << 10])
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/app")
            upstream.clearRequests()
            try await UpstreamRegistry.with(mode: .proxy(remoteURL: upstream.url), name: "proxy") { proxy in
                let pulled = try await skopeo.pull(from: proxy.hostPort, repository: "library/app", reference: "v1")
                #expect(pulled.topDigest == fixture.topDigest)
                #expect(pulled.allDigests == fixture.allDigests)
                let upstreamManifestGets = try await upstream.waitForRequests {
                    $0.method == "GET" && $0.path == "/v2/library/app/manifests/v1"
                }
                #expect(!upstreamManifestGets.isEmpty)
                #expect(!proxy.manifestRequests(repository: "library/app", reference: "v1").isEmpty)
            }
        }
    }
}
