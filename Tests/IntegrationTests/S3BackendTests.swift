import Foundation
import Testing

/// `storage.backend: s3` against a real `moto_server` (signatures checked), with Debian's
/// `docker-registry` upstream and skopeo pulling through the gateway.
@Suite(.serialized)
struct S3BackendTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// A gateway on `upstream` with its blobs in `moto`'s bucket under `prefix`.
    static func config(
        _ upstream: UpstreamRegistry, _ moto: MotoS3, prefix: String, redirect: Bool = false, secret: String? = nil
    ) throws -> GatewayConfig {
        var config = GatewayConfig.upstreams([upstream.url])
        config.storageLines = try moto.storageLines(prefix: prefix, redirect: redirect, secret: secret)
        return config
    }

    /// The keys a gateway stores `digests` under.
    static func keys(_ digests: some Sequence<String>, prefix: String) -> Set<String> {
        Set(digests.map { MotoS3.key(prefix: prefix, digest: $0) })
    }

    /// Regular files below `directory`.
    static func files(under directory: URL) -> [String] {
        (FileManager.default.enumerator(atPath: directory.path)?.allObjects as? [String] ?? []).filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: directory.appending(path: name).path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
    }

    /// Every blob and manifest lands in the bucket under the prefix, nothing but the metadata
    /// stays on local disk, and with the upstream stopped the bucket serves the next pulls,
    /// HEADs and ranges.
    @Test func pullsFillTheBucketWhichServesThemWithTheUpstreamStopped() async throws {
        // A 20 MiB layer goes up as a multipart upload (16 MiB parts).
        let fixture = try ImageFixture.make(.ociIndex, layerSizes: [20 << 20, 300 << 10], layerFormat: .random)
        try await MotoS3.with(checkSignatures: true) { moto in
            try await UpstreamRegistry.with { upstream in
                try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/app")
                try await GatewayProcess.with(try Self.config(upstream, moto, prefix: "mg-")) { gateway in
                    let cold = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: fixture.tag)
                    #expect(cold.allDigests == fixture.allDigests)

                    let objects = try await moto.objects()
                    #expect(Set(objects.keys) == Self.keys(fixture.allDigests, prefix: "mg-"), "\(objects.keys.sorted())")
                    for (digest, size) in fixture.sizes {
                        #expect(objects[MotoS3.key(prefix: "mg-", digest: digest)] == size, "\(digest)")
                    }
                    // Local disk holds the metadata and an empty spool directory, no blob.
                    #expect(!FileManager.default.fileExists(atPath: gateway.storagePath.appending(path: "blobs").path))
                    #expect(Self.files(under: gateway.storagePath.appending(path: "tmp")).isEmpty)
                    #expect(gateway.logText().contains("blobs are stored in S3"))

                    await upstream.stop()
                    let byTag = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: fixture.tag)
                    #expect(byTag.allDigests == fixture.allDigests)
                    let byDigest = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: fixture.topDigest)
                    #expect(byDigest.allDigests == fixture.allDigests)

                    let layer = try #require(fixture.layers.max { $0.size < $1.size })
                    let url = "\(gateway.url)/v2/library/app/blobs/\(layer.digest)"
                    let head = try await HTTPFetch.head(url)
                    #expect(head.status == 200)
                    #expect(head.header("Content-Length") == String(layer.size))
                    let range = try await HTTPFetch.get(url, headers: [("Range", "bytes=16777210-16777229")])
                    #expect(range.status == 206)
                    #expect(range.header("Content-Range") == "bytes 16777210-16777229/\(layer.size)")
                    #expect(range.body == fixture.bytes(of: layer.digest)?.subdata(in: 16_777_210..<16_777_230))

                    // mirrorgate gc beside it: the paged reconciliation finds rows and objects
                    // agreeing, and eviction under a 1 MiB cap deletes the large layers from
                    // the bucket.
                    await gateway.stop()
                    let small = gateway.directory.appending("small.yaml")
                    try gateway.config.render().replacingOccurrences(of: "max_size: 1GiB", with: "max_size: 1MiB")
                        .write(to: small, atomically: true, encoding: .utf8)
                    let gc = try await MirrorGateCLI.run(["gc", "--config", small.path])
                    #expect(gc.succeeded, "\(MirrorGateCLI.output(gc))")
                    #expect(gc.stdoutText.hasPrefix("freed "), "\(MirrorGateCLI.output(gc))")
                    let left = try await moto.objects()
                    let large = fixture.layers.filter { $0.size > 1 << 20 }.map(\.digest)
                    #expect(!large.isEmpty)
                    #expect(Self.keys(large, prefix: "mg-").isDisjoint(with: left.keys), "\(left.keys.sorted())")
                    #expect(left.values.reduce(0, +) <= 1 << 20)
                }
            }
        }
    }

    /// A large blob streams from the bucket with back-pressure: the gateway, restarted so its
    /// peak resident size counts only the serving, never holds a large part of the blob.
    @Test func servingALargeBlobFromTheBucketKeepsMemoryFlat() async throws {
        let size = 200 << 20
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [size], layerFormat: .random)
        let layer = try #require(fixture.layers.first)
        try await MotoS3.with(checkSignatures: true) { moto in
            try await UpstreamRegistry.with { upstream in
                try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/big")
                try await GatewayProcess.with(try Self.config(upstream, moto, prefix: "big-")) { gateway in
                    let url = "\(gateway.url)/v2/library/big/blobs/\(layer.digest)"
                    let curl = try #require(ManagedProcess.which("curl"))
                    let cold = try await ManagedProcess.run(curl, arguments: ["-sf", "-o", "/dev/null", "-w", "%{size_download}", url])
                    #expect(cold.stdoutText == String(size), "\(cold.stderr)")
                    #expect(try await moto.objects()[MotoS3.key(prefix: "big-", digest: layer.digest)] == size)

                    await upstream.stop()
                    try await gateway.restart()
                    let pid = try #require(gateway.pid)
                    // A slow reader (32 MiB/s), so the bytes wait in the gateway if anything does.
                    let warm = try await ManagedProcess.run(
                        curl, arguments: ["-sf", "--limit-rate", "32M", "-w", "%{size_download}", "-o", "/dev/null", url])
                    #expect(warm.stdoutText == String(size), "\(warm.stderr)\n\(gateway.logTail())")
                    let peak = try #require(Self.peakResidentBytes(pid: pid))
                    // Generous: a debug build idles at a few dozen MiB; a gateway that buffered
                    // the blob would be past 200 MiB.
                    #expect(peak < 120 << 20, "peak RSS \(peak >> 20) MiB while serving a \(size >> 20) MiB blob from S3")
                }
            }
        }
    }

    /// `VmHWM` of `/proc/<pid>/status`: the most the process has had resident.
    static func peakResidentBytes(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kib = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return nil }
        return kib << 10
    }

    /// A wrong secret stops `mirrorgate serve` at start-up with a message naming storage.s3
    /// and S3's answer; `mirrorgate check` prints the backend without the secret.
    @Test func aWrongSecretStopsStartUpNamingS3() async throws {
        try await MotoS3.with(checkSignatures: true) { moto in
            let directory = try TemporaryDirectory(prefix: "mirrorgate-s3-secret")
            var config = GatewayConfig.upstreams(["http://127.0.0.1:9"])
            config.storagePath = directory.appending("data").path
            config.storageLines = try moto.storageLines(prefix: "wrong-", secret: "not-the-secret")
            let file = directory.appending("gateway.yaml")
            try config.render().write(to: file, atomically: true, encoding: .utf8)

            let serve = try await MirrorGateCLI.run(["serve", "--config", file.path], timeout: .seconds(60))
            #expect(serve.status == 1, "\(MirrorGateCLI.output(serve))")
            #expect(serve.stderr.contains("error: storage.s3: cannot use bucket \"\(moto.bucket)\" at \(moto.endpoint)"), "\(MirrorGateCLI.output(serve))")
            #expect(serve.stderr.contains("403 SignatureDoesNotMatch"), "\(MirrorGateCLI.output(serve))")
            #expect(serve.stderr.contains("check storage.s3.access_key_id"), "\(MirrorGateCLI.output(serve))")
            #expect(!serve.stderr.contains("not-the-secret") && !serve.stdoutText.contains("not-the-secret"))

            let check = try await MirrorGateCLI.run(["check", "--config", file.path])
            #expect(check.succeeded, "\(MirrorGateCLI.output(check))")
            #expect(check.stdoutText.contains("storage: s3 bucket \(moto.bucket) at \(moto.endpoint)"), "\(check.stdoutText)")
            #expect(!check.stdoutText.contains("not-the-secret"))
        }
    }
}
