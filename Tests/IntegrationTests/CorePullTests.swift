import Foundation
import Testing

/// The core gateway against real processes: Debian's `docker-registry` as the upstream,
/// the `mirrorgate` executable, and `skopeo` pulling through it.
@Suite(.serialized)
struct CorePullTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// Every image shape pulled with `skopeo copy --all` by tag and by digest, every digest
    /// verified and equal to what was pushed.
    @Test(arguments: ImageFixture.Kind.allCases)
    func pullsEveryImageShapeByTagAndDigest(kind: ImageFixture.Kind) async throws {
        let fixture = try ImageFixture.make(kind, layerSizes: [300 << 10, 1 << 20, 40 << 10])
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/app")
            try await GatewayProcess.with(.upstreams([upstream.url])) { gateway in
                // dockerd's bare form: single-component Hub names get library/.
                let byTag = try await skopeo.pull(from: gateway.hostPort, repository: "app", reference: fixture.tag)
                #expect(byTag.topDigest == fixture.topDigest)
                #expect(byTag.allDigests == fixture.allDigests)
                let byDigest = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: fixture.topDigest)
                #expect(byDigest.allDigests == fixture.allDigests)
            }
        }
    }

    /// A second pull by tag within `tags.ttl` sends nothing upstream; after the TTL it costs
    /// one HEAD and no GET (the digest is already cached).
    @Test func warmPullsWithinTheTTLSendNothingUpstream() async throws {
        let fixture = try ImageFixture.make(.ociIndex)
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/warm")
            try await GatewayProcess.with(.upstreams([upstream.url], tagTTL: "3s")) { gateway in
                upstream.clearRequests()
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/warm", reference: "v1")
                let cold = upstream.requests()
                #expect(cold.filter { $0.isBlob && $0.method == "GET" }.count == fixture.blobDigests.count)

                upstream.clearRequests()
                let warm = try await skopeo.pull(from: gateway.hostPort, repository: "library/warm", reference: "v1")
                #expect(warm.allDigests == fixture.allDigests)
                #expect(upstream.requests().isEmpty, "warm pull within the TTL went upstream: \(upstream.requests())")

                try await Task.sleep(for: .seconds(3.5))
                upstream.clearRequests()
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/warm", reference: "v1")
                let afterTTL = upstream.requests()
                #expect(afterTTL.count == 1, "\(afterTTL)")
                #expect(afterTTL.first?.method == "HEAD")
            }
        }
    }

    /// With the upstream stopped, pulls by tag (stale, with a Warning) and by digest still work.
    @Test func servesByTagAndDigestWithTheUpstreamStopped() async throws {
        let fixture = try ImageFixture.make(.dockerManifestList)
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/offline")
            try await GatewayProcess.with(.upstreams([upstream.url], tagTTL: "0s")) { gateway in
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/offline", reference: "v1")
                await upstream.stop()

                let byTag = try await skopeo.pull(from: gateway.hostPort, repository: "library/offline", reference: "v1")
                #expect(byTag.allDigests == fixture.allDigests)
                let byDigest = try await skopeo.pull(from: gateway.hostPort, repository: "library/offline", reference: fixture.topDigest)
                #expect(byDigest.allDigests == fixture.allDigests)

                let head = try await HTTPFetch.request(
                    "\(gateway.url)/v2/library/offline/manifests/v1", method: "HEAD",
                    headers: [("Accept", "application/vnd.docker.distribution.manifest.list.v2+json")])
                #expect(head.status == 200)
                #expect(head.header("Docker-Content-Digest") == fixture.topDigest)
                #expect(head.header("Warning")?.contains("110") == true)
                #expect(gateway.logText().contains("serving a stale tag"))
            }
        }
    }

    /// A blob whose bytes were changed on the upstream's disk is refused: the client never
    /// gets a complete body, and nothing is cached.
    @Test func corruptedUpstreamBlobIsRefusedAndNeverCached() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [2 << 20])
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/corrupt")
            let layer = try #require(fixture.layers.first)
            let path = upstream.blobPath(layer.digest)
            var bytes = try Data(contentsOf: path)
            bytes[bytes.count / 2] ^= 0xFF
            try bytes.write(to: path)

            try await GatewayProcess.with(.upstreams([upstream.url])) { gateway in
                let url = "\(gateway.url)/v2/library/corrupt/blobs/\(layer.digest)"
                var completeWrongBody = false
                do {
                    let response = try await HTTPFetch.get(url)
                    completeWrongBody = response.status == 200 && response.body.count == layer.size
                } catch {
                    // The connection is aborted before the last chunk: expected.
                }
                #expect(!completeWrongBody, "a complete body that fails verification reached the client")

                await #expect(throws: (any Error).self) {
                    _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/corrupt", reference: "v1")
                }
                let hex = String(layer.digest.dropFirst("sha256:".count))
                let cached = gateway.storagePath.appending(path: "blobs/sha256/\(hex.prefix(2))/\(hex)")
                #expect(!FileManager.default.fileExists(atPath: cached.path))
                let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: gateway.storagePath.appending(path: "tmp").path)) ?? []
                #expect(leftovers.isEmpty)
                #expect(gateway.logText().contains("does not match its digest"))
            }
        }
    }

    /// A HEAD of a blob that is not cached is an existence check: it is answered by an
    /// upstream HEAD and downloads nothing.
    @Test func headOfAnUncachedBlobDownloadsNothing() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [20 << 20])
        let layer = try #require(fixture.layers.first)
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/big")
            upstream.clearRequests()
            try await GatewayProcess.with(.upstreams([upstream.url])) { gateway in
                let head = try await HTTPFetch.request("\(gateway.url)/v2/library/big/blobs/\(layer.digest)", method: "HEAD")
                #expect(head.status == 200)
                #expect(head.header("Content-Length") == String(layer.size))
                #expect(head.header("Docker-Content-Digest") == layer.digest)
                let asked = upstream.blobRequests(repository: "library/big", digest: layer.digest)
                #expect(asked.map(\.method) == ["HEAD"], "\(asked)")
                let hex = String(layer.digest.dropFirst("sha256:".count))
                #expect(!FileManager.default.fileExists(atPath: gateway.storagePath.appending(path: "blobs/sha256/\(hex.prefix(2))/\(hex)").path))
                let missing = try await HTTPFetch.request(
                    "\(gateway.url)/v2/library/big/blobs/sha256:\(String(repeating: "1", count: 64))", method: "HEAD")
                #expect(missing.status == 404)
            }
        }
    }

    /// containerd's `?ns=`, a registry key as the first path component, and the default
    /// registry reach different upstreams through one endpoint.
    @Test func routesByNamespaceAndPathPrefix() async throws {
        let hub = try ImageFixture.make(.ociImage)
        let other = try ImageFixture.make(.ociImage)
        try await UpstreamRegistry.with(name: "hub") { hubUpstream in
            try await UpstreamRegistry.with(name: "ghcr") { ghcrUpstream in
                try await skopeo.push(hub, to: hubUpstream.hostPort, repository: "library/app")
                try await skopeo.push(other, to: ghcrUpstream.hostPort, repository: "org/app")
                var config = GatewayConfig.upstreams([hubUpstream.url])
                config.setRegistry("ghcr.io", upstreams: [(name: "ghcr", url: ghcrUpstream.url)])
                try await GatewayProcess.with(config) { gateway in
                    let prefixed = try await skopeo.pull(from: gateway.hostPort, repository: "ghcr.io/org/app", reference: "v1")
                    #expect(prefixed.allDigests == other.allDigests)
                    let bare = try await skopeo.pull(from: gateway.hostPort, repository: "app", reference: "v1")
                    #expect(bare.allDigests == hub.allDigests)

                    let accept = [("Accept", "application/vnd.oci.image.manifest.v1+json")]
                    let ns = try await HTTPFetch.get("\(gateway.url)/v2/org/app/manifests/v1?ns=ghcr.io", headers: accept)
                    #expect(ns.status == 200)
                    #expect(ns.header("Docker-Content-Digest") == other.topDigest)
                    #expect(ns.header("OCI-Namespace") == "ghcr.io")
                    let hostPath = try await HTTPFetch.get("\(gateway.url)/ghcr.io/v2/org/app/manifests/v1", headers: accept)
                    #expect(hostPath.header("Docker-Content-Digest") == other.topDigest)
                    let unknown = try await HTTPFetch.get("\(gateway.url)/v2/org/app/manifests/v1?ns=quay.io", headers: accept)
                    #expect(unknown.status == 404)
                    #expect(unknown.text.contains("NAME_UNKNOWN"))
                }
            }
        }
    }

    /// What clients see on the wire: headers, negotiation, ranges and error envelopes.
    @Test func httpSurface() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [2048])
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/wire")
            try await GatewayProcess.with(.upstreams([upstream.url])) { gateway in
                let base = try await HTTPFetch.get("\(gateway.url)/v2/")
                #expect(base.status == 200)
                #expect(base.text == "{}")
                #expect(base.header("Docker-Distribution-API-Version") == "registry/2.0")

                let manifestURL = "\(gateway.url)/v2/library/wire/manifests/v1"
                let noOCI = try await HTTPFetch.get(manifestURL, headers: [("Accept", "application/vnd.docker.distribution.manifest.v2+json")])
                #expect(noOCI.status == 404)
                #expect(noOCI.text.contains("MANIFEST_UNKNOWN"))
                let oci = try await HTTPFetch.get(manifestURL, headers: [("Accept", "application/vnd.oci.image.manifest.v1+json;q=0.9, */*")])
                #expect(oci.status == 200)
                #expect(oci.header("Content-Type") == "application/vnd.oci.image.manifest.v1+json")
                #expect(oci.header("Docker-Content-Digest") == fixture.topDigest)
                #expect(oci.header("Content-Length") == String(oci.body.count))
                #expect(oci.body == fixture.bytes(of: fixture.topDigest))
                let notModified = try await HTTPFetch.get(manifestURL, headers: [
                    ("Accept", "application/vnd.oci.image.manifest.v1+json"), ("If-None-Match", "\"\(fixture.topDigest)\""),
                ])
                #expect(notModified.status == 304)

                let layer = try #require(fixture.layers.first)
                let blobURL = "\(gateway.url)/v2/library/wire/blobs/\(layer.digest)"
                let whole = try await HTTPFetch.get(blobURL)
                #expect(whole.body == fixture.bytes(of: layer.digest))
                let size = layer.size
                let ranged = try await HTTPFetch.get(blobURL, headers: [("Range", "bytes=500-1499")])
                #expect(ranged.status == 206)
                #expect(ranged.header("Content-Range") == "bytes 500-1499/\(size)")
                #expect(ranged.body == fixture.bytes(of: layer.digest)?.subdata(in: 500..<1500))
                let suffix = try await HTTPFetch.get(blobURL, headers: [("Range", "bytes=-500")])
                #expect(suffix.body.count == 500)
                let beyond = try await HTTPFetch.get(blobURL, headers: [("Range", "bytes=\(size + 10)-\(size + 20)")])
                #expect(beyond.status == 416)
                #expect(beyond.header("Content-Range") == "bytes */\(size)")
                #expect(try envelopeCode(beyond.body) == "SIZE_INVALID")

                // distribution 2.8 has no referrers API: 404 (so clients fall back to the
                // sha256-<hex> tag), saying so rather than "repository name not known".
                let referrers = try await HTTPFetch.get("\(gateway.url)/v2/library/wire/referrers/\(fixture.topDigest)")
                #expect(referrers.status == 404)
                #expect(try envelopeCode(referrers.body) == "UNSUPPORTED")
                #expect(referrers.text.contains("referrers API"), "\(referrers.text)")

                let missing = try await HTTPFetch.get("\(gateway.url)/v2/library/wire/manifests/nope", headers: [("Accept", "application/vnd.oci.image.manifest.v1+json")])
                #expect(missing.status == 404)
                #expect(try envelopeCode(missing.body) == "MANIFEST_UNKNOWN")
                let missingBlob = try await HTTPFetch.get("\(gateway.url)/v2/library/wire/blobs/sha256:\(String(repeating: "0", count: 64))")
                #expect(missingBlob.status == 404)
                #expect(try envelopeCode(missingBlob.body) == "BLOB_UNKNOWN")
                let badName = try await HTTPFetch.get("\(gateway.url)/v2/library/Bad..Name/manifests/v1")
                #expect(badName.status == 400)
                #expect(try envelopeCode(badName.body) == "NAME_INVALID")
                let badDigest = try await HTTPFetch.get("\(gateway.url)/v2/library/wire/blobs/sha256:totallywrong")
                #expect(badDigest.status == 400)
                #expect(try envelopeCode(badDigest.body) == "DIGEST_INVALID")
                // A reference that cannot be a tag names a manifest that cannot exist: 404, as
                // the spec (and the conformance suite's .INVALID_MANIFEST_NAME check) requires,
                // with no upstream request.
                let before = upstream.requests().count
                for bad in ["-bad", ".INVALID_MANIFEST_NAME"] {
                    let badTag = try await HTTPFetch.get("\(gateway.url)/v2/library/wire/manifests/\(bad)")
                    #expect(badTag.status == 404, "\(bad): \(badTag.status)")
                    #expect(try envelopeCode(badTag.body) == "MANIFEST_UNKNOWN")
                    let head = try await HTTPFetch.request("\(gateway.url)/v2/library/wire/manifests/\(bad)", method: "HEAD")
                    #expect(head.status == 404)
                }
                #expect(upstream.requests().count == before, "an impossible reference reached the upstream")
                let traversal = try await HTTPFetch.get("\(gateway.url)/v2/library/%2e%2e/%2e%2e/manifests/v1")
                #expect(traversal.status == 400)
                let push = try await HTTPFetch.request(manifestURL, method: "PUT", body: Data("{}".utf8))
                #expect(push.status == 405)
                #expect(try envelopeCode(push.body) == "UNSUPPORTED")
                let upload = try await HTTPFetch.request("\(gateway.url)/v2/library/wire/blobs/uploads/", method: "POST")
                #expect(upload.status == 405)
                let catalog = try await HTTPFetch.get("\(gateway.url)/v2/_catalog")
                #expect(catalog.status == 405)

                let tags = try await HTTPFetch.get("\(gateway.url)/v2/library/wire/tags/list")
                #expect(tags.status == 200)
                #expect(tags.text.contains("\"v1\""))
            }
        }
    }

    /// The executable's command line: `check` validates and prints the plan, `serve` stops
    /// cleanly on SIGTERM.
    @Test func checkCommandAndGracefulShutdown() async throws {
        let directory = try TemporaryDirectory(prefix: "mirrorgate-check")
        let good = directory.appending("good.yaml")
        try GatewayConfig.upstreams(["http://127.0.0.1:1"]).render().write(to: good, atomically: true, encoding: .utf8)
        let binary = try GatewayProcess.locateBinary()
        let ok = try await ManagedProcess.run(binary, arguments: ["check", "--config", good.path])
        #expect(ok.status == 0)
        #expect(ok.stdoutText.contains("registry docker.io"))
        let bad = directory.appending("bad.yaml")
        try "registries:\n  docker.io:\n    upstreams:\n      - url: http://x\n        pasword: y\n".write(to: bad, atomically: true, encoding: .utf8)
        let failed = try await ManagedProcess.run(binary, arguments: ["check", "--config", bad.path])
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("registries.docker.io.upstreams[0].pasword (line 5)"))

        let gateway = try await GatewayProcess.start(.upstreams(["http://127.0.0.1:1"]))
        gateway.kill(signal: SIGTERM)
        var exited = false
        for _ in 0..<100 where !exited {
            try await Task.sleep(for: .milliseconds(100))
            exited = !gateway.isRunning
        }
        #expect(exited)
        #expect(gateway.exitStatus == 0)
        await gateway.stop()
    }
}

/// The `code` of the first error in an OCI error envelope.
func envelopeCode(_ body: Data) throws -> String? {
    let object = try JSONSerialization.jsonObject(with: body) as? [String: Any]
    let errors = object?["errors"] as? [[String: Any]]
    return errors?.first?["code"] as? String
}
