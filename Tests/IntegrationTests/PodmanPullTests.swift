import Foundation
import Testing

/// podman 4.3 (containers/image, the pull library of CRI-O) pulling through the gateway with
/// the shipped `deploy/clients/cri-o/registries.conf`, only the address replaced: each
/// registry's mirror is `<gateway>/<registry>`, and the gateway routes on that first path
/// component (`/v2/ghcr.io/org/tool/manifests/v1`).
///
/// When every mirror fails containers/image falls back to the registry itself; podman's proxy
/// is a closed local port, so that fallback fails on loopback (see ``Podman``).
@Suite(.serialized)
struct PodmanPullTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// The shipped registries.conf with `gateway:5000` replaced by the gateway's address.
    static func shippedRegistriesConf(for gateway: GatewayProcess) throws -> String {
        let shipped = try String(contentsOf: DeployTests.deployURL("clients/cri-o/registries.conf"), encoding: .utf8)
        #expect(shipped.contains("gateway:5000/docker.io") && shipped.contains("gateway:5000/ghcr.io"))
        return shipped.replacingOccurrences(of: "gateway:5000", with: gateway.hostPort)
    }

    /// Parses the written file back with Python's tomllib: still TOML, every registry still
    /// at its own location, and its one mirror now the gateway's path for it.
    static func expectOnlyTheAddressChanged(_ podman: Podman, gateway: GatewayProcess) async throws {
        let parsed = try await DeployTests.parseTOML(podman.registriesConfURL)
        let registries = try #require(parsed["registry"] as? [[String: Any]])
        let prefixes = registries.compactMap { $0["prefix"] as? String }
        #expect(prefixes.contains("docker.io") && prefixes.contains("ghcr.io"))
        for registry in registries {
            let prefix = try #require(registry["prefix"] as? String)
            #expect(registry["location"] as? String == prefix)
            let mirrors = registry["mirror"] as? [[String: Any]] ?? []
            #expect(mirrors.map { $0["location"] as? String } == ["\(gateway.hostPort)/\(prefix)"])
            #expect(mirrors.map { $0["insecure"] as? Bool } == [true])
        }
    }

    /// What `podman image inspect` must say after pulling `fixture` by tag as `name`: the
    /// top manifest's digest as `Digest`; in `RepoDigests` that digest and, for a
    /// multi-platform image, the platform manifest's too; the platform's config as image ID
    /// and its diff IDs as layers.
    static func expectImage(_ image: Podman.Image, name: String, fixture: ImageFixture) throws {
        let content = try fixture.imageContent(for: .linuxAMD64)
        #expect(image.digest == fixture.topDigest, "\(name)")
        let expected = Set([fixture.topDigest, content.manifestDigest].map { "\(name)@\($0)" })
        #expect(Set(image.repoDigests) == expected, "\(name)")
        #expect("sha256:\(image.id)" == content.configDigest, "\(name)")
        #expect(image.layers == content.diffIDs, "\(name)")
        #expect(image.architecture == "amd64" && image.os == "linux", "\(name)")
    }

    @Test func pullsSingleAndMultiPlatformImagesFromTwoRegistriesThroughPathRouting() async throws {
        let single = try ImageFixture.make(.dockerImage, layerSizes: [48 << 10, 16 << 10])
        let list = try ImageFixture.make(.dockerManifestList, layerSizes: [32 << 10])
        let tool = try ImageFixture.make(.ociIndex, layerSizes: [32 << 10, 8 << 10])
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await UpstreamRegistry.with(name: "ghcr") { ghcr in
                try await skopeo.push(single, to: hub.hostPort, repository: "library/single")
                try await skopeo.push(list, to: hub.hostPort, repository: "library/list")
                try await skopeo.push(tool, to: ghcr.hostPort, repository: "org/tool")
                var config = GatewayConfig.upstreams([hub.url])
                config.setRegistry("ghcr.io", upstreams: [(name: "ghcr", url: ghcr.url)])
                try await GatewayProcess.with(config) { gateway in
                    let podman = try await Podman.with(registriesConf: try Self.shippedRegistriesConf(for: gateway)) { podman in
                        try await Self.expectOnlyTheAddressChanged(podman, gateway: gateway)
                        let images: [(reference: String, fixture: ImageFixture)] = [
                            ("docker.io/library/single", single), ("docker.io/library/list", list), ("ghcr.io/org/tool", tool),
                        ]
                        for (reference, fixture) in images {
                            let pull = try await podman.pull("\(reference):\(fixture.tag)", debug: true)
                            try #require(pull.succeeded, "\(pull)")
                            // The path form: the registry is the first component after /v2/.
                            #expect(pull.output.contains("GET http://\(gateway.hostPort)/v2/\(reference)/manifests/\(fixture.tag)"), "\(pull)")
                            try Self.expectImage(try await podman.inspectImage("\(reference):\(fixture.tag)"), name: reference, fixture: fixture)
                        }
                        return podman
                    }
                    #expect(podman.leftoverProcesses().isEmpty)
                    #expect(podman.leftoverMounts().isEmpty)
                    // The blob info cache went to the private /var/lib.
                    #expect(FileManager.default.fileExists(
                        atPath: podman.varLibDirectory.appendingPathComponent("containers/cache/blob-info-cache-v1.boltdb").path))

                    // Each registry's content came from its own upstream only.
                    #expect(ghcr.requests().allSatisfy { $0.repository == nil || $0.repository == "org/tool" })
                    #expect(hub.requests().allSatisfy { $0.repository == nil || $0.repository?.hasPrefix("library/") == true })
                    for layer in try tool.imageContent().layerDigests {
                        #expect(!ghcr.blobRequests(repository: "org/tool", digest: layer).isEmpty, "\(layer)")
                    }
                    #expect(gateway.logText().contains("name=org/tool reference=v1 registry=ghcr.io"))
                }
            }
        }
    }

    /// An image the gateway does not have: podman falls back from the mirror to the registry,
    /// which fails on the closed proxy port instead of fetching from the internet. podman's
    /// output names the mirror and the gateway's answer as well as the fallback's error.
    @Test func anImageTheGatewayCannotServeFailsInsteadOfComingFromTheRegistry() async throws {
        let image = try ImageFixture.make(.dockerImage, layerSizes: [16 << 10])
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await skopeo.push(image, to: hub.hostPort, repository: "library/present")
            try await GatewayProcess.with(GatewayConfig.upstreams([hub.url])) { gateway in
                try await Podman.with(registriesConf: try Self.shippedRegistriesConf(for: gateway)) { podman in
                    let absent = try await podman.pull("docker.io/library/absent:v1")
                    #expect(!absent.succeeded, "\(absent)")
                    #expect(absent.output.contains("Mirrors also failed: [\(gateway.hostPort)/docker.io/library/absent:v1:"), "\(absent)")
                    #expect(absent.output.contains("manifest unknown: library/absent:v1"), "\(absent)")
                    #expect(absent.output.contains("https://registry-1.docker.io/v2/"), "\(absent)")
                    #expect(absent.output.contains("proxyconnect tcp: dial tcp \(podman.proxy.hostPort)"), "\(absent)")
                    #expect(try await podman.imageIDs().isEmpty)

                    // The same podman pulls what the gateway has.
                    let present = try await podman.pull("docker.io/library/present:v1")
                    #expect(present.succeeded, "\(present)")
                    try Self.expectImage(try await podman.inspectImage("docker.io/library/present:v1"), name: "docker.io/library/present", fixture: image)
                }
            }
        }
    }

    /// The first upstream is SIGKILLed before the pull: podman gets the image from the
    /// gateway (served by the second upstream) without falling back to the registry.
    @Test func pullSurvivesAKilledFirstUpstream() async throws {
        let image = try ImageFixture.make(.ociIndex, layerSizes: [64 << 10, 16 << 10])
        try await UpstreamRegistry.with(name: "up1") { up1 in
            try await UpstreamRegistry.with(name: "up2") { up2 in
                try await skopeo.push(image, to: up1.hostPort, repository: "library/app")
                try await skopeo.push(image, to: up2.hostPort, repository: "library/app")
                try await GatewayProcess.with(FailoverTests.config([up1.url, up2.url])) { gateway in
                    up1.kill(signal: SIGKILL)
                    try await Podman.with(registriesConf: try Self.shippedRegistriesConf(for: gateway)) { podman in
                        let pull = try await podman.pull("docker.io/library/app:\(image.tag)")
                        try #require(pull.succeeded, "\(pull)\n\(gateway.logTail())")
                        #expect(!pull.output.contains("retrying"), "\(pull)")
                        try Self.expectImage(try await podman.inspectImage("docker.io/library/app:\(image.tag)"), name: "docker.io/library/app", fixture: image)
                    }
                    #expect(!up1.isRunning)
                    for layer in try image.imageContent().layerDigests {
                        #expect(!up2.blobRequests(repository: "library/app", digest: layer).isEmpty, "\(layer)")
                    }
                    #expect(gateway.logText().contains("served_by=up2"))
                }
            }
        }
    }
}
