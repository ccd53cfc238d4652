import Foundation
import Testing

/// `registries.<key>.users`: a registry whose upstream pulls with private credentials is open
/// only to the users it lists; a denied user gets 403 `DENIED` before the cache or any
/// upstream is consulted. Without a list, every authenticated user reads whatever the
/// credentials can read, and `mirrorgate check` says so.
@Suite(.serialized)
struct PerRegistryUsersTests {
    static let accept = ("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")

    static func basic(_ user: String, _ password: String) -> (String, String) {
        ("Authorization", "Basic " + Data("\(user):\(password)".utf8).base64EncodedString())
    }

    @Test func aRestrictedRegistryDeniesUsersItDoesNotList() async throws {
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [4096])
        let files = try TemporaryDirectory(prefix: "registry-users")
        let htpasswd = files.appending("htpasswd")
        try await HtpasswdFile.write(users: ["alice": "alice-pw", "bob": "bob-pw"], to: htpasswd)
        try await HtpasswdRegistry.with(users: ["gw": "gw-secret"]) { privateUpstream in
            try await skopeo.push(fixture, to: privateUpstream.hostPort, repository: "secretorg/app", credentials: .init(user: "gw", password: "gw-secret"))
            try await UpstreamRegistry.with { publicUpstream in
                try await skopeo.push(fixture, to: publicUpstream.hostPort, repository: "library/app")
                let credentialed = GatewayConfig.Upstream(name: "private", url: privateUpstream.url, extra: ["username: gw", "password: gw-secret"])
                var config = GatewayConfig(registries: [
                    .init(key: "docker.io", upstreams: [.init(name: "public", url: publicUpstream.url)]),
                    .init(key: "private.test", upstreams: [credentialed], users: ["alice"]),
                    .init(key: "shared.test", upstreams: [credentialed]),
                ])
                config.extraYAML = "auth: {htpasswd: \"\(htpasswd.path)\"}\n"

                let checked = try await ManagedProcess.run(
                    try GatewayProcess.locateBinary(), arguments: ["check", "--config", { () throws -> String in
                        let file = files.appending("check.yaml")
                        var rendered = config
                        rendered.listenPort = 5000
                        try rendered.render().write(to: file, atomically: true, encoding: .utf8)
                        return file.path
                    }()])
                #expect(checked.succeeded, "\(checked.stderr)")
                #expect(checked.stdoutText.contains("registry private.test:\n  access: alice only (registries.private.test.users)"), "\(checked.stdoutText)")
                #expect(checked.stdoutText.contains(
                    "registry shared.test:\n  access: every authenticated user\n  warning: private (as gw) pulls with credentials: every htpasswd user can read whatever those credentials can read"),
                    "\(checked.stdoutText)")

                try await GatewayProcess.with(config) { gateway in
                    let alice = Self.basic("alice", "alice-pw"), bob = Self.basic("bob", "bob-pw")
                    let byTag = "\(gateway.url)/v2/private.test/secretorg/app/manifests/v1"
                    let allowed = try await HTTPFetch.get(byTag, headers: [alice, Self.accept])
                    #expect(allowed.status == 200)
                    #expect(allowed.header("Docker-Content-Digest") == fixture.topDigest)

                    let denied = try await HTTPFetch.get(byTag, headers: [bob, Self.accept])
                    #expect(denied.status == 403)
                    #expect(try envelopeCode(denied.body) == "DENIED")
                    #expect(denied.text.contains("user 'bob' may not pull from registry 'private.test' (not in registries.private.test.users)"), "\(denied.text)")
                    // Cached by now, by digest, in every form a client names a registry: still denied.
                    for url in [
                        "\(gateway.url)/v2/private.test/secretorg/app/manifests/\(fixture.topDigest)",
                        "\(gateway.url)/v2/secretorg/app/manifests/\(fixture.topDigest)?ns=private.test",
                        "\(gateway.url)/private.test/v2/secretorg/app/manifests/\(fixture.topDigest)",
                        "\(gateway.url)/v2/private.test/secretorg/app/blobs/\(fixture.layers[0].digest)",
                        "\(gateway.url)/v2/private.test/secretorg/app/tags/list",
                    ] {
                        let answer = try await HTTPFetch.get(url, headers: [bob, Self.accept])
                        #expect(answer.status == 403, "\(url): \(answer.status) \(answer.text)")
                    }
                    #expect(gateway.logText().contains("user=bob"))

                    // Unrestricted registries: every user, including the documented exposure.
                    #expect(try await HTTPFetch.get("\(gateway.url)/v2/library/app/manifests/v1", headers: [bob, Self.accept]).status == 200)
                    #expect(try await HTTPFetch.get("\(gateway.url)/v2/shared.test/secretorg/app/manifests/v1", headers: [bob, Self.accept]).status == 200)
                    #expect(gateway.logText().contains("registry pulls with credentials for everyone"))
                }
            }
        }
    }
}
