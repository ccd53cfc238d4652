import Foundation
import Testing

/// Issue 12 item 1: content is stored once by digest but served only through a repository
/// known to hold it, on the registry it was fetched through.
@Suite(.serialized)
struct RepositoryScopeTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    static let ociAccept = [("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")]

    /// A private layer and manifest fetched for `private/secret` (through an upstream with
    /// credentials) are not served under a public name, nor through another registry whose
    /// only upstream is down.
    @Test func privateContentIsNotServedThroughOtherRepositoriesOrRegistries() async throws {
        let secret = try ImageFixture.make(.ociImage, tag: "v1")
        let layer = try #require(secret.layers.first)
        try await HtpasswdRegistry.with(users: ["gw": "gw-password"]) { privateUpstream in
            try await skopeo.push(secret, to: privateUpstream.hostPort, repository: "private/secret", credentials: .init(user: "gw", password: "gw-password"))
            var config = GatewayConfig()
            config.registries = [
                .init(key: "docker.io", upstreams: [.init(name: "private", url: privateUpstream.url, extra: ["username: gw", "password: gw-password"])]),
                .init(key: "other.test", upstreams: [.init(name: "down", url: "http://127.0.0.3:\(try FreePort.allocate())")]),
            ]
            try await GatewayProcess.with(config) { gateway in
                // The owner pulls it: manifest and blobs are cached and linked to private/secret.
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "private/secret", reference: "v1")
                #expect(pulled.allDigests == secret.allDigests)

                let leaks: [(String, String)] = [
                    ("/v2/library/alpine/blobs/\(layer.digest)", "BLOB_UNKNOWN"),
                    ("/v2/some/repo/blobs/\(layer.digest)?ns=other.test", "BLOB_UNKNOWN"),
                    ("/v2/other.test/some/repo/blobs/\(layer.digest)", "BLOB_UNKNOWN"),
                    ("/v2/library/alpine/manifests/\(secret.topDigest)", "MANIFEST_UNKNOWN"),
                    ("/v2/some/repo/manifests/\(secret.topDigest)?ns=other.test", "MANIFEST_UNKNOWN"),
                ]
                for (path, code) in leaks {
                    for method in ["GET", "HEAD"] {
                        let answer = try await HTTPFetch.request("\(gateway.url)\(path)", method: method, headers: Self.ociAccept)
                        #expect(answer.status == 404, "\(method) \(path) answered \(answer.status): \(answer.text)")
                        if method == "GET" {
                            #expect(try envelopeCode(answer.body) == code, "\(path): \(answer.text)")
                            #expect(answer.body.count < layer.size, "private bytes leaked on \(path)")
                        }
                    }
                }
                // The owner still gets everything from the cache.
                let again = try await HTTPFetch.get("\(gateway.url)/v2/private/secret/blobs/\(layer.digest)")
                #expect(again.status == 200)
                #expect(again.body == secret.bytes(of: layer.digest))
            }
        }
    }

    /// The same content legitimately in a second repository is confirmed with a free HEAD
    /// (no second download), then served from the cache; links survive a restart, so a warm
    /// read after it makes no upstream request at all.
    @Test func sharedContentIsConfirmedByHeadAndLinksSurviveARestart() async throws {
        let fixture = try ImageFixture.make(.ociImage, tag: "v1", layerSizes: [512 << 10])
        let layer = try #require(fixture.layers.first)
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await skopeo.push(fixture, to: hub.hostPort, repository: "library/base")
            try await skopeo.push(fixture, to: hub.hostPort, repository: "team/app")
            let gateway = try await GatewayProcess.start(.upstreams([hub.url]))
            do {
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/base", reference: "v1")
                hub.clearRequests()

                let blob = try await HTTPFetch.get("\(gateway.url)/v2/team/app/blobs/\(layer.digest)")
                #expect(blob.status == 200)
                #expect(blob.body == fixture.bytes(of: layer.digest))
                let manifest = try await HTTPFetch.get("\(gateway.url)/v2/team/app/manifests/\(fixture.topDigest)", headers: Self.ociAccept)
                #expect(manifest.status == 200)
                let asked = hub.requests()
                #expect(asked.filter { $0.method == "GET" && $0.path.contains("/blobs/") }.isEmpty, "blob downloaded again: \(asked)")
                #expect(asked.contains { $0.method == "HEAD" && $0.path == "/v2/team/app/blobs/\(layer.digest)" }, "\(asked)")
                #expect(asked.contains { $0.method == "HEAD" && $0.path == "/v2/team/app/manifests/\(fixture.topDigest)" }, "\(asked)")

                // Restart, stop the upstream: linked content is still served, for both repositories.
                try await gateway.restart()
                await hub.stop()
                for repository in ["library/base", "team/app"] {
                    let warm = try await HTTPFetch.get("\(gateway.url)/v2/\(repository)/blobs/\(layer.digest)")
                    #expect(warm.status == 200, "\(repository): \(warm.status) \(warm.text)")
                    let warmManifest = try await HTTPFetch.get("\(gateway.url)/v2/\(repository)/manifests/\(fixture.topDigest)", headers: Self.ociAccept)
                    #expect(warmManifest.status == 200, "\(repository): \(warmManifest.status)")
                }
                // A repository never linked is refused even though the bytes are on disk.
                let other = try await HTTPFetch.get("\(gateway.url)/v2/someone/else/blobs/\(layer.digest)")
                #expect(other.status == 404)
            } catch {
                await gateway.stop()
                throw error
            }
            await gateway.stop()
        }
    }
}
