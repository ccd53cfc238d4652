import Foundation
import Testing

/// `mirrorgate warm` against a real gateway in front of a real `docker-registry`: every
/// platform of an index lands in the cache (and serves a pull with the upstream gone),
/// `--platform` fetches one platform only, and a missing image fails the run without
/// stopping the others.
@Suite(.serialized)
struct WarmCommandTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// The config and layer digests an image manifest of `fixture` names.
    static func blobDigests(ofManifest digest: String, in fixture: ImageFixture) throws -> Set<String> {
        let bytes = try #require(fixture.bytes(of: digest))
        let object = try #require(try JSONSerialization.jsonObject(with: bytes) as? [String: Any])
        let config = try #require(object["config"] as? [String: Any])
        let layers = try #require(object["layers"] as? [[String: Any]])
        return Set(([config] + layers).compactMap { $0["digest"] as? String })
    }

    /// An OCI index, a Docker manifest list and an image under a second registry key
    /// (routed with `?ns=`) are warmed in one run: every manifest and blob of every platform
    /// is then in the cache, verified; with the upstream stopped, `skopeo copy --all`
    /// through the gateway still gets every digest.
    @Test func warmFillsTheCacheWithEveryPlatform() async throws {
        let index = try ImageFixture.make(.ociIndex, layerSizes: [200 << 10, 1 << 20])
        let list = try ImageFixture.make(.dockerManifestList, layerSizes: [100 << 10])
        let other = try ImageFixture.make(.ociImage, layerSizes: [300 << 10])
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(index, to: upstream.hostPort, repository: "library/multi")
            try await skopeo.push(list, to: upstream.hostPort, repository: "team/list")
            try await skopeo.push(other, to: upstream.hostPort, repository: "org/app")
            var config = GatewayConfig.upstreams([upstream.url])
            config.setRegistry("ghcr.io", upstreams: [(name: "ghcr-mirror", url: upstream.url)])
            try await GatewayProcess.with(config) { gateway in
                let result = try await MirrorGateCLI.run(
                    ["warm", "--url", gateway.url, "multi:v1", "team/list:v1", "ghcr.io/org/app:v1"])
                let output = MirrorGateCLI.output(result)
                #expect(result.succeeded, "\(output)\n\(gateway.logTail(lines: 30))")
                let lines = result.stdoutText.split(separator: "\n").map(String.init)
                let indexBlobs = index.blobDigests.count
                #expect(lines.contains { $0.hasPrefix("ok  multi:v1  \(indexBlobs) blobs  ") && $0.hasSuffix("(\(index.topDigest))") }, "\(output)")
                #expect(lines.contains { $0.hasPrefix("ok  team/list:v1  \(list.blobDigests.count) blobs  ") && $0.hasSuffix("(\(list.topDigest))") }, "\(output)")
                #expect(lines.contains { $0.hasPrefix("ok  ghcr.io/org/app:v1  2 blobs  ") && $0.hasSuffix("(\(other.topDigest))") }, "\(output)")
                #expect(lines.last?.hasPrefix("warmed 3 of 3 images, ") == true, "\(output)")

                let cache = CacheInspection(gateway)
                for fixture in [index, list, other] {
                    let missing = fixture.allDigests.subtracting(cache.blobDigests())
                    #expect(missing.isEmpty, "\(fixture.kind): not cached after warm: \(missing.sorted())")
                }
                #expect(cache.verifyBlobs() == [])

                // The cache really holds the images: no upstream, and the pull still works.
                await upstream.stop()
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/multi", reference: index.tag)
                #expect(pulled.allDigests == index.allDigests)
                let pulledList = try await skopeo.pull(from: gateway.hostPort, repository: "team/list", reference: list.tag)
                #expect(pulledList.allDigests == list.allDigests)
            }
        }
    }

    /// `--platform linux/arm64` fetches the index, the arm64 manifest and its blobs, and
    /// nothing of amd64; a platform the index lacks fails that image with exit status 1.
    @Test func platformWarmsOnlyThatPlatform() async throws {
        let index = try ImageFixture.make(.ociIndex, layerSizes: [150 << 10, 250 << 10])
        let arm = try #require(index.children.first { $0.platform?.architecture == "arm64" })
        let amd = try #require(index.children.first { $0.platform?.architecture == "amd64" })
        let armBlobs = try Self.blobDigests(ofManifest: arm.digest, in: index)
        let amdBlobs = try Self.blobDigests(ofManifest: amd.digest, in: index)
        #expect(armBlobs.isDisjoint(with: amdBlobs))
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(index, to: upstream.hostPort, repository: "library/multi")
            try await GatewayProcess.with(.upstreams([upstream.url])) { gateway in
                let result = try await MirrorGateCLI.run(["warm", "--url", gateway.url, "--platform", "linux/arm64", "library/multi:v1"])
                let output = MirrorGateCLI.output(result)
                #expect(result.succeeded, "\(output)")
                #expect(result.stdoutText.contains("ok  library/multi:v1  \(armBlobs.count) blobs  "), "\(output)")

                let cache = CacheInspection(gateway)
                let cached = cache.blobDigests()
                #expect(cached.contains(index.topDigest), "the index is not cached")
                #expect(cached.contains(arm.digest), "the arm64 manifest is not cached")
                #expect(armBlobs.isSubset(of: cached), "arm64 blobs missing: \(armBlobs.subtracting(cached).sorted())")
                #expect(!cached.contains(amd.digest), "the amd64 manifest was fetched")
                #expect(cached.isDisjoint(with: amdBlobs), "amd64 blobs were fetched: \(cached.intersection(amdBlobs).sorted())")
                #expect(cache.verifyBlobs() == [])

                let absent = try await MirrorGateCLI.run(["warm", "--url", gateway.url, "--platform", "linux/s390x", "library/multi:v1"])
                let absentOutput = MirrorGateCLI.output(absent)
                #expect(!absent.signaled && absent.status == 1, "\(absentOutput)")
                #expect(absent.stdoutText.contains("FAILED library/multi:v1: no manifest for platform linux/s390x"), "\(absentOutput)")
                #expect(absent.stdoutText.contains("linux/arm64/v8"), "the failure should list the platforms offered: \(absentOutput)")
                #expect(absent.stdoutText.contains("warmed 0 of 1 images"), "\(absentOutput)")
                #expect(cache.blobDigests().isDisjoint(with: amdBlobs))
            }
        }
    }

    /// A missing image and a malformed reference fail (exit status 1, each named with its
    /// reason) while the images around them are still warmed.
    @Test func aMissingImageFailsTheRunButTheOthersAreWarmed() async throws {
        let first = try ImageFixture.make(.ociImage, layerSizes: [120 << 10])
        let second = try ImageFixture.make(.dockerImage, layerSizes: [80 << 10, 90 << 10])
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(first, to: upstream.hostPort, repository: "library/first")
            try await skopeo.push(second, to: upstream.hostPort, repository: "library/second")
            try await GatewayProcess.with(.upstreams([upstream.url])) { gateway in
                let result = try await MirrorGateCLI.run(
                    ["warm", "--url", gateway.url, "first:v1", "absent:v1", "Bad/Name", "second:v1"])
                let output = MirrorGateCLI.output(result)
                #expect(!result.signaled && result.status == 1, "\(output)")
                let text = result.stdoutText
                #expect(text.contains("ok  first:v1  2 blobs  "), "\(output)")
                #expect(text.contains("ok  second:v1  3 blobs  "), "\(output)")
                #expect(text.contains("FAILED absent:v1: manifest v1: 404"), "\(output)")
                #expect(text.contains("FAILED Bad/Name: invalid image reference"), "\(output)")
                #expect(text.contains("warmed 2 of 4 images, "), "\(output)")

                let cache = CacheInspection(gateway)
                for fixture in [first, second] {
                    let missing = fixture.allDigests.subtracting(cache.blobDigests())
                    #expect(missing.isEmpty, "\(fixture.kind): not cached: \(missing.sorted())")
                }
            }
        }
    }

    /// warm hashes what it receives: pointed straight at a registry (the same pull API)
    /// whose stored layers were overwritten, a same-size layer with other bytes and a
    /// truncated layer each fail their image with the digest or size named; an intact image
    /// in the same run is fine.
    @Test func warmRejectsBlobsThatDoNotMatchTheirDigest() async throws {
        let tampered = try ImageFixture.make(.ociImage, layerSizes: [64 << 10])
        let truncated = try ImageFixture.make(.dockerImage, layerSizes: [96 << 10])
        let intact = try ImageFixture.make(.ociImage, layerSizes: [32 << 10])
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(tampered, to: upstream.hostPort, repository: "library/tampered")
            try await skopeo.push(truncated, to: upstream.hostPort, repository: "library/truncated")
            try await skopeo.push(intact, to: upstream.hostPort, repository: "library/intact")
            let badLayer = try #require(tampered.layers.first)
            try OCILayoutBuilder.randomBytes(count: badLayer.size).write(to: upstream.blobPath(badLayer.digest))
            let shortLayer = try #require(truncated.layers.first)
            let shortBytes = try #require(truncated.bytes(of: shortLayer.digest)).prefix(shortLayer.size / 2)
            try Data(shortBytes).write(to: upstream.blobPath(shortLayer.digest))

            let result = try await MirrorGateCLI.run(["warm", "--url", upstream.url, "tampered:v1", "truncated:v1", "intact:v1"])
            let output = MirrorGateCLI.output(result)
            #expect(!result.signaled && result.status == 1, "\(output)")
            let text = result.stdoutText
            #expect(text.contains("FAILED tampered:v1: blob \(badLayer.digest): content hashes to sha256:"), "\(output)")
            #expect(text.contains("FAILED truncated:v1: blob \(shortLayer.digest): received \(shortLayer.size / 2) bytes, the manifest says \(shortLayer.size)"), "\(output)")
            #expect(text.contains("ok  intact:v1  2 blobs  "), "\(output)")
            #expect(text.contains("warmed 1 of 3 images"), "\(output)")
        }
    }

    /// A gateway that is not there: every image fails with the reason, exit status 1.
    @Test func anUnreachableGatewayFailsEveryImage() async throws {
        let port = try FreePort.allocate()
        let result = try await MirrorGateCLI.run(["warm", "--url", "http://127.0.0.1:\(port)", "alpine:3.20"], timeout: .seconds(60))
        let output = MirrorGateCLI.output(result)
        #expect(!result.signaled && result.status == 1, "\(output)")
        #expect(result.stdoutText.contains("FAILED alpine:3.20: cannot reach the gateway at http://127.0.0.1:\(port)"), "\(output)")
        #expect(result.stdoutText.contains("warmed 0 of 1 images"), "\(output)")
    }
}
