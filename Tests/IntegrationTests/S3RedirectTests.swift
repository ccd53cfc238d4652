import Foundation
import Testing

/// `storage.s3.redirect: true`: cached blob GETs are answered `307 Temporary Redirect` to a
/// presigned URL of the object, and skopeo, containerd and dockerd follow it to the bucket
/// and get the right bytes (each client checks every digest itself).
///
/// moto runs without signature checking here: moto 5.2.1 with checking on answers every
/// presigned GET with a 500 (it looks for an `Authorization` header), and without it, it
/// serves presigned URLs without checking them. The URL's signature is checked against
/// botocore's in the client's unit tests (`S3PresignAndStallTests`).
@Suite(.serialized)
struct S3RedirectTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// Pushes `fixture` to a fresh upstream, starts a redirecting gateway on a fresh bucket,
    /// pulls everything once with skopeo (cold: fetched, stored, nothing redirected), and runs
    /// `body` with the log offset after that pull.
    func withWarmGateway(
        _ fixture: ImageFixture, repository: String, _ body: (GatewayProcess, MotoS3, _ logOffset: Int) async throws -> Void
    ) async throws {
        try await MotoS3.with(checkSignatures: false) { moto in
            try await UpstreamRegistry.with { upstream in
                try await skopeo.push(fixture, to: upstream.hostPort, repository: repository)
                let config = try S3BackendTests.config(upstream, moto, prefix: "rd-", redirect: true)
                try await GatewayProcess.with(config) { gateway in
                    let cold = try await skopeo.pull(from: gateway.hostPort, repository: repository, reference: fixture.tag)
                    #expect(cold.allDigests == fixture.allDigests)
                    #expect(Self.redirected(in: gateway.logText()).isEmpty, "a cold pull is served by the fetch, not redirected")
                    try await body(gateway, moto, gateway.logText().utf8.count)
                }
            }
        }
    }

    /// The digests of blob requests the gateway answered with a 307, from its request log.
    static func redirected(in log: some StringProtocol) -> Set<String> {
        var digests = Set<String>()
        for line in log.split(separator: "\n") where line.contains("status=307") {
            guard let range = line.range(of: " reference=sha256:") else { continue }
            digests.insert(String(line[range.upperBound...].prefix(64)).withPrefix("sha256:"))
        }
        return digests
    }

    /// Whether moto served the presigned GET of every digest's object with a 200.
    static func expectFetchedFromTheBucket(_ digests: Set<String>, moto: MotoS3, sourceLocation: SourceLocation = #_sourceLocation) {
        let log = moto.logText()
        for digest in digests {
            let request = "\"GET /\(moto.bucket)/\(MotoS3.key(prefix: "rd-", digest: digest))?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            let served = log.split(separator: "\n").contains { $0.contains(request) && $0.contains("\" 200 ") }
            #expect(served, "no presigned GET of \(digest) answered 200 in moto's log", sourceLocation: sourceLocation)
        }
    }

    /// The configs and layers of the platform a pull of `fixture` picks.
    static func platformBlobs(_ fixture: ImageFixture, _ platform: ContentDescriptor.Platform = .linuxAMD64) throws -> Set<String> {
        let content = try fixture.imageContent(for: platform)
        return Set(content.layerDigests + [content.configDigest])
    }

    @Test func skopeoFollowsTheRedirectAndHeadsAndRangesStayOnTheGateway() async throws {
        let fixture = try ImageFixture.make(.ociIndex, layerSizes: [1 << 20, 200 << 10], layerFormat: .random)
        try await withWarmGateway(fixture, repository: "library/app") { gateway, moto, offset in
            let warm = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: fixture.tag)
            #expect(warm.allDigests == fixture.allDigests)
            let log = gateway.logText().utf8.dropFirst(offset)
            let redirected = Self.redirected(in: String(decoding: log, as: UTF8.self))
            #expect(redirected == Set(fixture.blobDigests), "\(gateway.logTail())")
            Self.expectFetchedFromTheBucket(redirected, moto: moto)

            // The answer itself: a 307 with Location and Docker-Content-Digest, and no body.
            let layer = try #require(fixture.layers.first)
            let url = "\(gateway.url)/v2/library/app/blobs/\(layer.digest)"
            let answer = try await HTTPFetch.request(url, followRedirects: false)
            #expect(answer.status == 307)
            #expect(answer.header("Docker-Content-Digest") == layer.digest)
            let location = try #require(answer.header("Location"))
            #expect(location.hasPrefix("\(moto.endpoint)/\(moto.bucket)/\(MotoS3.key(prefix: "rd-", digest: layer.digest))?"))
            #expect(location.contains("X-Amz-Expires=600"))
            #expect(answer.body.isEmpty)
            // A HEAD and a Range request are served by the gateway.
            let head = try await HTTPFetch.request(url, method: "HEAD", followRedirects: false)
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == String(layer.size))
            let range = try await HTTPFetch.request(url, headers: [("Range", "bytes=10-19")], followRedirects: false)
            #expect(range.status == 206)
            #expect(range.body == fixture.bytes(of: layer.digest)?.subdata(in: 10..<20))
        }
    }

    @Test func containerdFollowsTheRedirect() async throws {
        let fixture = try ImageFixture.make(.ociIndex, layerSizes: [1 << 20, 200 << 10], layerFormat: .random)
        try await withWarmGateway(fixture, repository: "library/app") { gateway, moto, offset in
            try await ContainerdDaemon.with { containerd in
                let hosts = try containerd.writeHostsDir(registries: [(host: "docker.io", mirrorURL: gateway.url)])
                let result = try await containerd.fetch(ref: "docker.io/library/app:\(fixture.tag)", hostsDir: hosts)
                #expect(result.succeeded, "\(result.stderr)\n\(gateway.logTail())")
                let stored = try await containerd.contentDigests()
                let wanted = try Self.platformBlobs(fixture)
                #expect(wanted.isSubset(of: stored))
                let verified = try containerd.verifyContentStore()
                #expect(Set(verified.keys) == stored)

                let log = String(decoding: gateway.logText().utf8.dropFirst(offset), as: UTF8.self)
                #expect(Self.redirected(in: log) == wanted, "\(gateway.logTail())")
                Self.expectFetchedFromTheBucket(wanted, moto: moto)
            }
        }
    }

    @Test func dockerdFollowsTheRedirect() async throws {
        let fixture = try ImageFixture.make(.dockerManifestList, layerSizes: [1 << 20, 64 << 10])
        try await withWarmGateway(fixture, repository: "library/app") { gateway, moto, offset in
            try await DockerDaemon.with(daemonJSON: try DockerdPullTests.shippedDaemonJSON(for: gateway)) { docker in
                let pull = try await docker.pull("app:\(fixture.tag)")
                try #require(pull.succeeded, "\(pull)\n\(gateway.logTail())")
                try DockerdPullTests.expectImage(try await docker.inspectImage("app:\(fixture.tag)"), name: "app", fixture: fixture)
                #expect(!pull.daemonLog.contains("Attempting next endpoint"), "dockerd fell back:\n\(pull.daemonLog)")
            }
            let log = String(decoding: gateway.logText().utf8.dropFirst(offset), as: UTF8.self)
            let wanted = try Self.platformBlobs(fixture)
            #expect(Self.redirected(in: log) == wanted, "\(gateway.logTail())")
            Self.expectFetchedFromTheBucket(wanted, moto: moto)
        }
    }
}

extension String {
    fileprivate func withPrefix(_ prefix: String) -> String { prefix + self }
}
