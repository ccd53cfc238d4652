#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing

/// Self-tests of ``ContainerdDaemon``: a private containerd 1.6 pulling, with
/// `ctr content fetch --hosts-dir`, from a registry configured as a mirror in `hosts.toml`.
///
/// The `docker-registry` stands in for the gateway. What these tests pin down about
/// containerd 1.6.20 as a mirror client (the facts the gateway relies on):
///
/// - every request to a mirror carries `?ns=<registry>` (`ns=docker.io`, `ns=ghcr.io`),
///   and the `User-Agent` is `containerd/<version>`;
/// - a tag is resolved with `HEAD /v2/<name>/manifests/<tag>` (Accept: both Docker and
///   both OCI manifest types, then `*/*`); the manifest is then fetched by digest with
///   `GET /v2/<name>/manifests/sha256:…` (Accept: its media type, `*/*`), and blobs with
///   `GET /v2/<name>/blobs/sha256:…` (Accept: its media type, `*/*`) — never a HEAD on a blob,
///   never a GET by tag;
/// - when the mirror fails (refused, 404), containerd moves on to `server`, which the
///   harness points at a closed local port: nothing ever goes to the internet;
/// - a mirror URL path is kept and `/v2/…` appended after it (`/ghcr.io/v2/…`) unless
///   `override_path = true`, where the path replaces `/v2`.
///
/// Needs `containerd`, `ctr`, `docker-registry` and `skopeo`; `make test` installs them.
@Suite(.serialized)
struct ContainerdHarnessTests {
    /// The Accept header of containerd 1.6's tag-resolving HEAD.
    static let resolveAccept = "application/vnd.docker.distribution.manifest.v2+json, "
        + "application/vnd.docker.distribution.manifest.list.v2+json, "
        + "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*"

    /// Starts a registry and a containerd, runs `body`, and stops both whatever happens.
    private func withRegistryAndDaemon<T>(
        _ body: (UpstreamRegistry, ContainerdDaemon, Skopeo) async throws -> T
    ) async throws -> T {
        let skopeo = try Skopeo.locate()
        return try await UpstreamRegistry.with(name: "mirror") { registry in
            try await ContainerdDaemon.with { daemon in
                try await body(registry, daemon, skopeo)
            }
        }
    }

    /// Pushes `fixture` as `repository:tag` and empties the access log.
    private func push(_ fixture: ImageFixture, to registry: UpstreamRegistry, repository: String, skopeo: Skopeo) async throws {
        try await skopeo.push(fixture, to: registry.hostPort, repository: repository)
        try await registry.waitForRequests {
            $0.method == "PUT" && $0.path == "/v2/\(repository)/manifests/\(fixture.tag)" && $0.status == 201
        }
        registry.clearRequests()
    }

    /// The config and layer digests of the image manifest `digest` of `fixture`.
    private func blobsOfManifest(_ digest: String, in fixture: ImageFixture) throws -> [String] {
        let data = try #require(fixture.bytes(of: digest))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let config = try #require((json["config"] as? [String: Any])?["digest"] as? String)
        let layers = (json["layers"] as? [[String: Any]] ?? []).compactMap { $0["digest"] as? String }
        return [config] + layers
    }

    /// `errno` of a TCP connect to 127.0.0.1:`port` (0 if it connected).
    private func connectError(port: Int) -> Int32 {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0 ? 0 : errno
    }

    // MARK: - Lifecycle

    @Test func daemonStartsWithItsOwnConfigAndStopsWithoutLeftovers() async throws {
        let daemon = try await ContainerdDaemon.start(name: "containerd-lifecycle")
        let pid = try #require(daemon.pid)
        do {
            let config = try String(contentsOf: daemon.configURL, encoding: .utf8)
            #expect(config.hasPrefix("version = 2\n"))
            #expect(config.contains("root = \"\(daemon.rootDirectory.path)\""))
            #expect(config.contains("state = \"\(daemon.stateDirectory.path)\""))
            #expect(config.contains("address = \"\(daemon.socketPath)\""))
            #expect(config.contains("\"io.containerd.grpc.v1.cri\""))
            #expect(daemon.socketPath.hasPrefix(daemon.directory.path + "/"))

            let version = try await daemon.ctrSucceeding(["version"])
            #expect(version.stdoutText.contains("Server:"))

            // Every plugin that is loaded loads fine; nothing that needs privileges is there.
            let plugins = try await daemon.ctrSucceeding(["plugins", "ls"]).stdoutText
            let rows = plugins.split(separator: "\n").dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true) }
            #expect(!rows.isEmpty)
            for row in rows { #expect(row.last == "ok", "\(row)") }
            let ids = Set(rows.compactMap { $0.count > 1 ? "\($0[0]).\($0[1])" : nil })
            for required in ContainerdDaemon.requiredPlugins { #expect(ids.contains(required), "\(required) not loaded") }
            for disabled in ContainerdDaemon.defaultDisabledPlugins { #expect(!ids.contains(disabled), "\(disabled) loaded") }
            #expect(ids.contains("io.containerd.snapshotter.v1.native"))

            let log = try String(contentsOf: daemon.logURL, encoding: .utf8)
            #expect(log.contains("containerd successfully booted"))
            #expect(!log.contains("level=error") && !log.contains("level=warning") && !log.contains("level=fatal"), "\(daemon.logTail())")

            // The fallback server port refuses connections at once.
            #expect(connectError(port: daemon.closedPort) == ECONNREFUSED)
        } catch {
            await daemon.stop()
            throw error
        }
        await daemon.stop()
        #expect(!daemon.isRunning)
        #expect(kill(pid, 0) != 0, "containerd pid \(pid) still exists")
        #expect(daemon.processesUsingDirectory().isEmpty)
        #expect(daemon.strayShimPIDs().isEmpty)
        #expect(daemon.mountsUnderDirectory().isEmpty)
        await daemon.stop()  // idempotent
    }

    @Test func hostsFilesPointAtTheMirrorWithAClosedServer() throws {
        #expect(ContainerdDaemon.renderHostsFile(server: "http://127.0.0.1:9", mirrors: ["http://127.0.0.1:5000"]) == """
            server = "http://127.0.0.1:9"

            [host."http://127.0.0.1:5000"]
              capabilities = ["pull", "resolve"]

            """)
        #expect(ContainerdDaemon.renderHostsFile(
            server: "http://127.0.0.1:9", mirrors: ["http://127.0.0.1:5000/v2", "http://127.0.0.1:5001/v2"], overridePath: true) == """
            server = "http://127.0.0.1:9"

            [host."http://127.0.0.1:5000/v2"]
              capabilities = ["pull", "resolve"]
              override_path = true

            [host."http://127.0.0.1:5001/v2"]
              capabilities = ["pull", "resolve"]
              override_path = true

            """)
    }

    @Test func httpDumpRequestsParse() {
        let stderr = #"""
            time="2026-11-29T05:27:21Z" level=info msg="HEAD /v2/library/a/manifests/v1?ns=docker.io HTTP/1.1"
            time="2026-11-29T05:27:21Z" level=info msg="Host: 127.0.0.1:45123"
            time="2026-11-29T05:27:21Z" level=info msg="Accept: application/vnd.oci.image.index.v1+json, */*"
            time="2026-11-29T05:27:21Z" level=info msg="User-Agent: containerd/1.6.20~ds1"
            time="2026-11-29T05:27:21Z" level=info
            time="2026-11-29T05:27:21Z" level=info msg="HTTP/1.1 200 OK"
            time="2026-11-29T05:27:21Z" level=info msg="Content-Length: 2"
            time="2026-11-29T05:27:21Z" level=info
            time="2026-11-29T05:27:21Z" level=info msg="{\"a\":1}GET /v2/library/a/blobs/sha256:00?ns=docker.io HTTP/1.1"
            time="2026-11-29T05:27:21Z" level=info msg="Accept: application/octet-stream, */*"
            time="2026-11-29T05:27:21Z" level=info
            """#
        let requests = ContainerdDaemon.dumpedRequests(in: stderr)
        #expect(requests.map(\.description) == [
            "HEAD /v2/library/a/manifests/v1?ns=docker.io",
            "GET /v2/library/a/blobs/sha256:00?ns=docker.io",
        ])
        #expect(requests.first?.header("accept") == "application/vnd.oci.image.index.v1+json, */*")
        #expect(requests.first?.header("User-Agent") == "containerd/1.6.20~ds1")
        #expect(requests.last?.header("Accept") == "application/octet-stream, */*")
        #expect(requests.last?.path == "/v2/library/a/blobs/sha256:00")
    }

    // MARK: - Fetching through a mirror

    @Test func fetchThroughAMirrorStoresEveryDigestAndSendsNsQuery() async throws {
        let fixture = try ImageFixture.make(.ociImage, tag: "v1", layerSizes: [32 << 10, 48 << 10])
        let repository = "library/alpine-test"
        try await withRegistryAndDaemon { registry, daemon, skopeo in
            try await push(fixture, to: registry, repository: repository, skopeo: skopeo)
            let hostsDir = try daemon.writeHostsDir(registries: [(host: "docker.io", mirrorURL: registry.url)])
            let hostsFile = try String(contentsOf: hostsDir.appendingPathComponent("docker.io/hosts.toml"), encoding: .utf8)
            #expect(hostsFile == ContainerdDaemon.renderHostsFile(server: daemon.closedServerURL, mirrors: [registry.url]))

            let result = try await daemon.fetch(ref: "docker.io/\(repository):v1", hostsDir: hostsDir, httpDump: true)
            try #require(result.succeeded, "ctr content fetch failed (\(result.status)):\n\(result.stderr)\n\(daemon.logTail())")

            // Every digest of the image landed, intact.
            #expect(try await daemon.contentDigests() == fixture.allDigests)
            let store = try daemon.verifyContentStore()
            for (digest, size) in fixture.sizes {
                #expect(store[digest] == size, "\(digest)")
                #expect(try Data(contentsOf: daemon.blobPath(digest)) == fixture.bytes(of: digest))
            }
            #expect(try await daemon.imageNames() == ["docker.io/\(repository):v1"])

            // What the mirror saw: HEAD by tag, GET manifest by digest, GET each blob;
            // every request with ?ns=docker.io and containerd's User-Agent.
            let expectedCount = 2 + fixture.blobs.count
            let seen = try await registry.waitForRequests(count: expectedCount) { $0.repository == repository }
            #expect(seen.count == expectedCount, "\(seen)")
            #expect(registry.requests().count == seen.count, "requests outside \(repository): \(registry.requests())")
            for request in seen {
                #expect(request.uri == request.path + "?ns=docker.io", "\(request)")
                #expect(request.userAgent.hasPrefix("containerd/"), "\(request.userAgent)")
                #expect(request.status == 200, "\(request)")
            }
            #expect(seen.first?.method == "HEAD")
            #expect(seen.first?.path == "/v2/\(repository)/manifests/v1")
            #expect(seen.dropFirst().first?.method == "GET")
            #expect(seen.dropFirst().first?.path == "/v2/\(repository)/manifests/\(fixture.topDigest)")
            let blobGets = seen.dropFirst(2)
            #expect(blobGets.allSatisfy { $0.method == "GET" && $0.isBlob })
            #expect(Set(blobGets.compactMap(\.reference)) == Set(fixture.blobDigests))

            // Request headers, from ctr's --http-dump.
            let dumped = ContainerdDaemon.dumpedRequests(in: result.stderr)
            // Blobs are fetched concurrently: their order varies.
            let logged = seen.map { "\($0.method) \($0.uri)" }
            #expect(Array(dumped.map(\.description).prefix(2)) == Array(logged.prefix(2)))
            #expect(Set(dumped.map(\.description)) == Set(logged))
            #expect(dumped.count == logged.count)
            #expect(dumped.first?.header("Accept") == Self.resolveAccept)
            for request in dumped.dropFirst() {
                let digest = String(request.path.split(separator: "/").last ?? "")
                let mediaType = (fixture.manifests + fixture.blobs).first { $0.digest == digest }?.mediaType ?? "?"
                #expect(request.header("Accept") == "\(mediaType), */*", "\(request)")
            }
            for request in dumped {
                #expect(request.header("Host") == registry.hostPort)
                #expect(request.header("User-Agent")?.hasPrefix("containerd/") == true)
                #expect(request.header("Authorization") == nil)
            }

            // Fetching again with everything present only resolves the tag.
            registry.clearRequests()
            let again = try await daemon.fetch(ref: "docker.io/\(repository):v1", hostsDir: hostsDir)
            #expect(again.succeeded, "\(again.stderr)")
            let resolved = try await registry.waitForRequests { $0.repository == repository }
            try await Task.sleep(for: .milliseconds(300))
            #expect(registry.requests().map(\.description) == resolved.map(\.description))
            #expect(resolved.map(\.description) == ["HEAD /v2/\(repository)/manifests/v1?ns=docker.io -> 200"])

            // After removing the content, everything is downloaded again.
            try await daemon.removeAllContent()
            registry.clearRequests()
            let refetch = try await daemon.fetch(ref: "docker.io/\(repository):v1", hostsDir: hostsDir)
            #expect(refetch.succeeded, "\(refetch.stderr)")
            #expect(try await daemon.contentDigests() == fixture.allDigests)
            try await registry.waitForRequests(count: expectedCount) { $0.repository == repository }
        }
    }

    @Test func platformSelectionOfAManifestList() async throws {
        let fixture = try ImageFixture.make(.dockerManifestList, tag: "v1", layerSizes: [16 << 10])
        let repository = "library/multi"
        try await withRegistryAndDaemon { registry, daemon, skopeo in
            try await push(fixture, to: registry, repository: repository, skopeo: skopeo)
            let hostsDir = try daemon.writeHostsDir(registries: [(host: "docker.io", mirrorURL: registry.url)])

            // One platform: the list, that platform's manifest and its blobs.
            let amd64 = try #require(fixture.children.first { $0.platform == .linuxAMD64 })
            let one = try await daemon.fetch(ref: "docker.io/\(repository):v1", hostsDir: hostsDir, platform: "linux/amd64")
            try #require(one.succeeded, "\(one.stderr)")
            let expectedOne = Set([fixture.topDigest, amd64.digest] + (try blobsOfManifest(amd64.digest, in: fixture)))
            #expect(try await daemon.contentDigests() == expectedOne)
            try daemon.verifyContentStore()
            let seen = try await registry.waitForRequests(count: expectedOne.count + 1) { $0.repository == repository }
            #expect(seen.allSatisfy { $0.uri.hasSuffix("?ns=docker.io") })
            #expect(seen.first.map { "\($0.method) \($0.path)" } == "HEAD /v2/\(repository)/manifests/v1")

            // Every platform.
            try await daemon.removeAllContent()
            let all = try await daemon.fetch(ref: "docker.io/\(repository):v1", hostsDir: hostsDir, allPlatforms: true)
            try #require(all.succeeded, "\(all.stderr)")
            #expect(try await daemon.contentDigests() == fixture.allDigests)
            try daemon.verifyContentStore()
        }
    }

    /// `ctr images pull` (fetch and unpack) works too, but only as root: unpacking mounts
    /// the snapshot (`--snapshotter native`, the only snapshotter left enabled). Nothing
    /// stays mounted afterwards.
    @Test(.enabled(if: getuid() == 0, "unpacking needs mount privileges"))
    func imagesPullUnpacksWithTheNativeSnapshotterAsRoot() async throws {
        let fixture = try ImageFixture.make(.ociImage, tag: "v1", layerSizes: [16 << 10, 16 << 10])
        let repository = "library/unpack"
        try await withRegistryAndDaemon { registry, daemon, skopeo in
            try await push(fixture, to: registry, repository: repository, skopeo: skopeo)
            let hostsDir = try daemon.writeHostsDir(registries: [(host: "docker.io", mirrorURL: registry.url)])
            let pulled = try await daemon.ctr([
                "images", "pull", "--snapshotter", "native", "--platform", "linux/amd64",
                "--hosts-dir", hostsDir.path, "docker.io/\(repository):v1",
            ])
            try #require(pulled.succeeded, "\(pulled.stderr)\n\(daemon.logTail())")
            #expect(try await daemon.contentDigests() == fixture.allDigests)
            let snapshots = try await daemon.ctrSucceeding(["snapshots", "--snapshotter", "native", "ls"]).stdoutText
            #expect(snapshots.split(separator: "\n").dropFirst().filter { $0.contains("Committed") }.count == fixture.layers.count)
            #expect(daemon.mountsUnderDirectory().isEmpty)
            let seen = try await registry.waitForRequests(count: 2 + fixture.blobs.count) { $0.repository == repository }
            #expect(seen.allSatisfy { $0.uri.hasSuffix("?ns=docker.io") })
        }
    }

    // MARK: - Failing mirrors

    @Test func aFailingMirrorFallsBackOnlyToTheClosedServer() async throws {
        try await withRegistryAndDaemon { registry, daemon, _ in
            // The mirror answers 404: containerd tries the server next, which refuses.
            let hostsDir = try daemon.writeHostsDir(registries: [(host: "docker.io", mirrorURL: registry.url)])
            let missing = try await daemon.fetch(ref: "docker.io/library/absent:v1", hostsDir: hostsDir)
            #expect(!missing.succeeded)
            #expect(missing.stderr.contains("127.0.0.1:\(daemon.closedPort)"), "\(missing.stderr)")
            #expect(missing.stderr.contains("connection refused"), "\(missing.stderr)")
            let notFound = try await registry.waitForRequests { $0.repository == "library/absent" }
            #expect(notFound.map(\.description) == ["HEAD /v2/library/absent/manifests/v1?ns=docker.io -> 404"])

            // The mirror is down: same.
            let deadPort = try FreePort.allocate()
            let downDir = try daemon.writeHostsDir(registries: [(host: "docker.io", mirrorURL: "http://127.0.0.1:\(deadPort)")])
            let down = try await daemon.fetch(ref: "docker.io/library/absent:v1", hostsDir: downDir)
            #expect(!down.succeeded)
            #expect(down.stderr.contains("127.0.0.1:\(deadPort)"), "\(down.stderr)")
            #expect(down.stderr.contains("127.0.0.1:\(daemon.closedPort)"), "\(down.stderr)")
            #expect(try await daemon.contentDigests().isEmpty)
        }
    }

    // MARK: - Mirror URLs with a path

    @Test func mirrorURLPathsAndOverridePath() async throws {
        let fixture = try ImageFixture.make(.ociImage, tag: "v1", layerSizes: [16 << 10])
        let repository = "org/app"
        try await withRegistryAndDaemon { registry, daemon, skopeo in
            try await push(fixture, to: registry, repository: repository, skopeo: skopeo)

            // A path on the mirror URL is a prefix: /ghcr.io/v2/<name>/… (404 from the registry).
            let prefixed = try daemon.writeHostsDir(registries: [(host: "ghcr.io", mirrorURL: "\(registry.url)/ghcr.io")])
            let viaPrefix = try await daemon.fetch(ref: "ghcr.io/\(repository):v1", hostsDir: prefixed)
            #expect(!viaPrefix.succeeded)
            let prefixedRequests = try await registry.waitForRequests { $0.path.hasPrefix("/ghcr.io/") }
            #expect(prefixedRequests.map(\.description) == ["HEAD /ghcr.io/v2/\(repository)/manifests/v1?ns=ghcr.io -> 404"])
            registry.clearRequests()

            // With override_path the URL's path replaces /v2.
            let overridden = try daemon.writeHostsDir(
                registries: [(host: "ghcr.io", mirrorURL: "\(registry.url)/v2")], overridePath: true)
            let hostsFile = try String(contentsOf: overridden.appendingPathComponent("ghcr.io/hosts.toml"), encoding: .utf8)
            #expect(hostsFile.contains("override_path = true"))
            let viaOverride = try await daemon.fetch(ref: "ghcr.io/\(repository):v1", hostsDir: overridden)
            try #require(viaOverride.succeeded, "\(viaOverride.stderr)")
            #expect(try await daemon.contentDigests() == fixture.allDigests)
            let seen = try await registry.waitForRequests(count: 2 + fixture.blobs.count) { $0.repository == repository }
            #expect(seen.allSatisfy { $0.uri.hasSuffix("?ns=ghcr.io") && $0.status == 200 }, "\(seen)")
            #expect(seen.first.map { "\($0.method) \($0.path)" } == "HEAD /v2/\(repository)/manifests/v1")
        }
    }
}
