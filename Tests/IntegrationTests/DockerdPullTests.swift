import Foundation
import Testing

/// dockerd 20.10 (Debian's docker.io: a real daemon with its own roots, vfs storage) pulling
/// Docker Hub images through the gateway as its registry mirror, configured by the shipped
/// `deploy/clients/dockerd/daemon.json` with only the address replaced — the dind CI setup.
///
/// dockerd's `registry-mirrors` applies to Docker Hub only and sends bare Hub names
/// (`/v2/library/single/manifests/v1`), which the gateway serves from `default_registry`.
/// When the mirror fails dockerd falls back to Docker Hub; its proxy is a closed local port,
/// so that fallback fails on loopback (see ``DockerDaemon``).
@Suite(.serialized)
struct DockerdPullTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// The shipped daemon.json with `gateway:5000` replaced by the gateway's address, and
    /// nothing else changed (checked by parsing both).
    static func shippedDaemonJSON(for gateway: GatewayProcess) throws -> String {
        let shipped = try String(contentsOf: DeployTests.deployURL("clients/dockerd/daemon.json"), encoding: .utf8)
        let text = shipped.replacingOccurrences(of: "gateway:5000", with: gateway.hostPort)
        let before = try #require(try JSONSerialization.jsonObject(with: Data(shipped.utf8)) as? [String: [String]])
        let after = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: [String]])
        #expect(Set(after.keys) == Set(before.keys))
        #expect(after["registry-mirrors"] == ["http://\(gateway.hostPort)"])
        #expect(after["insecure-registries"] == [gateway.hostPort])
        return text
    }

    /// What `docker image inspect` must say after pulling `fixture` by tag as `name`: the
    /// top manifest's digest (the index of a multi-platform image), the platform's config as
    /// image ID, and its diff IDs as layers (dockerd unpacked and checked every layer).
    static func expectImage(
        _ image: DockerDaemon.Image, name: String, fixture: ImageFixture, platform: ContentDescriptor.Platform = .linuxAMD64
    ) throws {
        let content = try fixture.imageContent(for: platform)
        #expect(image.repoDigests == ["\(name)@\(fixture.topDigest)"], "\(name)")
        #expect(image.id == content.configDigest, "\(name)")
        #expect(image.layers == content.diffIDs, "\(name)")
        #expect(image.architecture == platform.architecture && image.os == platform.os, "\(name)")
    }

    @Test func pullsSingleAndMultiPlatformImagesThroughTheShippedDaemonJSON() async throws {
        let single = try ImageFixture.make(.dockerImage, layerSizes: [48 << 10, 16 << 10])
        let list = try ImageFixture.make(.dockerManifestList, layerSizes: [32 << 10])
        let index = try ImageFixture.make(.ociIndex, layerSizes: [32 << 10, 8 << 10])
        let images: [(name: String, fixture: ImageFixture)] = [("single", single), ("list", list), ("index", index)]
        try await UpstreamRegistry.with(name: "hub") { hub in
            for (name, fixture) in images {
                try await skopeo.push(fixture, to: hub.hostPort, repository: "library/\(name)")
            }
            try await skopeo.push(index, to: hub.hostPort, repository: "library/index-arm")
            try await GatewayProcess.with(GatewayConfig.upstreams([hub.url])) { gateway in
                let daemon = try await DockerDaemon.with(daemonJSON: try Self.shippedDaemonJSON(for: gateway)) { docker in
                    let registry = try await docker.registryConfig()
                    #expect(registry.mirrors == ["\(gateway.url)/"])
                    #expect(registry.insecureRegistries == [gateway.hostPort])

                    for (name, fixture) in images {
                        let pull = try await docker.pull("\(name):\(fixture.tag)")
                        try #require(pull.succeeded, "\(pull)")
                        try Self.expectImage(try await docker.inspectImage("\(name):\(fixture.tag)"), name: name, fixture: fixture)
                    }
                    // Another platform of the same index: its own config and layers.
                    let arm = try await docker.pull("index-arm:\(index.tag)", platform: "linux/arm64")
                    try #require(arm.succeeded, "\(arm)")
                    let armImage = try await docker.inspectImage("index-arm:\(index.tag)")
                    try Self.expectImage(armImage, name: "index-arm", fixture: index, platform: .linuxARM64)
                    #expect(armImage.variant == "v8")
                    return docker
                }
                #expect(daemon.leftoverProcesses().isEmpty)
                #expect(daemon.leftoverMounts().isEmpty)

                // dockerd had no way to the content but the gateway, and the gateway got each
                // platform's blobs from the upstream under the bare Hub name dockerd asked for.
                let log = gateway.logText()
                for (name, fixture) in images {
                    #expect(log.contains("name=library/\(name) reference=\(fixture.tag) registry=docker.io"), "\(name)")
                    for layer in try fixture.imageContent().layerDigests {
                        #expect(!hub.blobRequests(repository: "library/\(name)", digest: layer).isEmpty, "\(name) \(layer)")
                    }
                }
                for layer in try index.imageContent(for: .linuxARM64).layerDigests {
                    #expect(!hub.blobRequests(repository: "library/index-arm", digest: layer).isEmpty)
                }
            }
        }
    }

    /// An image the gateway does not have: dockerd falls back from the mirror to Docker Hub,
    /// and that fails on the closed proxy port instead of fetching the image from the
    /// internet. The CLI shows only the Hub fallback's error; the gateway's answer is in the
    /// daemon's log.
    @Test func anImageTheGatewayCannotServeFailsInsteadOfComingFromDockerHub() async throws {
        let image = try ImageFixture.make(.dockerImage, layerSizes: [16 << 10])
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await skopeo.push(image, to: hub.hostPort, repository: "library/present")
            try await GatewayProcess.with(GatewayConfig.upstreams([hub.url])) { gateway in
                try await DockerDaemon.with(daemonJSON: try Self.shippedDaemonJSON(for: gateway)) { docker in
                    let absent = try await docker.pull("absent:v1")
                    #expect(!absent.succeeded, "\(absent)")
                    #expect(absent.output.contains("https://registry-1.docker.io/v2/"), "\(absent)")
                    #expect(absent.output.contains("proxyconnect tcp: dial tcp \(docker.proxy.hostPort)"), "\(absent)")
                    #expect(absent.daemonLog.contains("manifest unknown: library/absent:v1"), "\(absent)")
                    #expect(try await docker.imageIDs().isEmpty)
                    #expect(gateway.logText().contains("name=library/absent reference=v1 registry=docker.io"))

                    // The same daemon pulls what the gateway has.
                    let present = try await docker.pull("present:v1")
                    #expect(present.succeeded, "\(present)")
                    try Self.expectImage(try await docker.inspectImage("present:v1"), name: "present", fixture: image)
                }
            }
        }
    }

    /// The first upstream is SIGKILLed before the pull: dockerd gets the image from the
    /// gateway (served by the second upstream) and never learns of the failover.
    @Test func pullSurvivesAKilledFirstUpstream() async throws {
        let image = try ImageFixture.make(.dockerManifestList, layerSizes: [64 << 10, 16 << 10])
        try await UpstreamRegistry.with(name: "up1") { up1 in
            try await UpstreamRegistry.with(name: "up2") { up2 in
                try await skopeo.push(image, to: up1.hostPort, repository: "library/app")
                try await skopeo.push(image, to: up2.hostPort, repository: "library/app")
                try await GatewayProcess.with(FailoverTests.config([up1.url, up2.url])) { gateway in
                    up1.kill(signal: SIGKILL)
                    try await DockerDaemon.with(daemonJSON: try Self.shippedDaemonJSON(for: gateway)) { docker in
                        let pull = try await docker.pull("app:\(image.tag)")
                        try #require(pull.succeeded, "\(pull)\n\(gateway.logTail())")
                        try Self.expectImage(try await docker.inspectImage("app:\(image.tag)"), name: "app", fixture: image)
                        #expect(!pull.daemonLog.contains("Attempting next endpoint"), "dockerd fell back:\n\(pull.daemonLog)")
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
