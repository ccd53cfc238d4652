import Foundation
import Testing

/// What the gateway tells those who did not configure it: with `auth` off and `admin_listen`
/// set, the status page and its JSON (every tenant's recent repositories and digests) are
/// served only on the admin listener; no answer ever names a filesystem path, not even there.
@Suite(.serialized)
struct InformationExposureTests {
    static let statusPaths = ["/_mirrorgate/", "/_mirrorgate", "/_mirrorgate/status.json", "/_mirrorgate/upstreams"]

    @Test func withoutAuthTheStatusIsOnlyOnTheAdminListener() async throws {
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [2048])
        let adminPort = try FreePort.allocate()
        let files = try TemporaryDirectory(prefix: "exposure")
        let htpasswd = files.appending("htpasswd")
        try await HtpasswdFile.write(users: ["ops": "ops-pw"], to: htpasswd)
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "tenant/private-app")
            var config = GatewayConfig.upstreams([upstream.url])
            config.extraYAML = "admin_listen: 127.0.0.1:\(adminPort)\n"
            try await GatewayProcess.with(config) { gateway in
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "tenant/private-app", reference: "v1")
                for path in Self.statusPaths {
                    let main = try await HTTPFetch.get("\(gateway.url)\(path)")
                    #expect(main.status == 404, "main listener \(path): \(main.status)")
                    #expect(!main.text.contains("tenant/private-app"))
                    let admin = try await HTTPFetch.get("http://127.0.0.1:\(adminPort)\(path)")
                    #expect(admin.status == 200, "admin listener \(path): \(admin.status)")
                    #expect(!admin.text.contains(gateway.storagePath.path), "\(path) names the cache path")
                    #expect(!admin.text.contains(gateway.directory.path), "\(path) names a path")
                }
                #expect(try await HTTPFetch.get("http://127.0.0.1:\(adminPort)/_mirrorgate/status.json").text.contains("\"cache\""))
                // `mirrorgate status` reads it there.
                let status = try await ManagedProcess.run(try GatewayProcess.locateBinary(), arguments: ["status", "--url", "http://127.0.0.1:\(adminPort)"])
                #expect(status.succeeded, "\(status.stderr)")
                #expect(!status.stdoutText.contains(gateway.storagePath.path))
            }
            // With auth the main listener serves it to authenticated users, the admin listener too.
            config.extraYAML = "admin_listen: 127.0.0.1:\(adminPort)\nauth: {htpasswd: \"\(htpasswd.path)\"}\n"
            try await GatewayProcess.with(config) { (gateway: GatewayProcess) async throws in
                let ops = ("Authorization", "Basic " + Data("ops:ops-pw".utf8).base64EncodedString())
                for path in Self.statusPaths {
                    #expect(try await HTTPFetch.get("\(gateway.url)\(path)").status == 401)
                    #expect(try await HTTPFetch.get("\(gateway.url)\(path)", headers: [ops]).status == 200)
                    #expect(try await HTTPFetch.get("http://127.0.0.1:\(adminPort)\(path)").status == 200)
                }
            }
        }
    }

    /// A full cache disk: `/readyz`, the status page, `status.json` and the error a client gets
    /// say "cache storage not writable" and the errno class, never the path (they used to print
    /// `write /…/data/tmp/…: No space left on device`).
    @Test(.enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
    func storageErrorsNameNoPath() async throws {
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [64 << 10])
        let dd = try #require(ManagedProcess.which("dd"))
        let mountPoint = try TemporaryDirectory(prefix: "mirrorgate-fullfs")
        try await CacheTests.mountTmpfs(at: mountPoint.url, options: "size=16m")
        defer { CacheTests.unmount(mountPoint.url) }
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/app")
            var config = GatewayConfig.upstreams([upstream.url])
            config.storagePath = mountPoint.appending("data", isDirectory: true).path
            try await GatewayProcess.with(config) { gateway in
                // Fill the file system: dd stops at ENOSPC.
                _ = try await ManagedProcess.run(dd, arguments: ["if=/dev/zero", "of=\(mountPoint.appending("filler").path)", "bs=64k"], timeout: .seconds(60))
                let accept = ("Accept", "application/vnd.oci.image.manifest.v1+json")
                var answers: [HTTPFetch.Response] = []
                answers.append(try await HTTPFetch.get("\(gateway.url)/v2/library/app/manifests/v1", headers: [accept]))
                answers.append(try await HTTPFetch.get("\(gateway.url)/v2/library/app/blobs/\(fixture.layers[0].digest)"))
                var ready = try await HTTPFetch.get("\(gateway.url)/readyz")
                let deadline = ContinuousClock.now + .seconds(10)
                while !ready.text.contains("not writable"), ContinuousClock.now < deadline {
                    answers.append(try await HTTPFetch.get("\(gateway.url)/v2/library/app/blobs/\(fixture.layers[0].digest)"))
                    try await Task.sleep(for: .milliseconds(200))
                    ready = try await HTTPFetch.get("\(gateway.url)/readyz")
                }
                #expect(ready.status == 200)
                #expect(ready.text.contains("cache storage not writable ("), "\(ready.text)\n\(gateway.logTail(lines: 20))")
                #expect(ready.text.contains("ENOSPC"), "\(ready.text)")
                answers.append(ready)
                answers.append(try await HTTPFetch.get("\(gateway.url)/_mirrorgate/"))
                answers.append(try await HTTPFetch.get("\(gateway.url)/_mirrorgate/status.json"))
                #expect(answers.last?.text.contains("ENOSPC") == true)
                #expect(answers[answers.count - 2].text.contains("cache storage not writable"))
                for answer in answers {
                    #expect(!answer.text.contains(mountPoint.path), "an answer names the cache path: \(answer.status) \(answer.text.prefix(600))")
                }
                // The operator's log keeps the path.
                #expect(gateway.logText().contains(mountPoint.path))
            }
        }
    }
}
