import Foundation
import Testing

/// containerd (a real daemon with its own root, `ctr content fetch --hosts-dir`) pulling
/// through the gateway: several registries on one endpoint, routed by containerd's `?ns=`,
/// and a failover underneath that containerd never sees.
@Suite(.serialized)
struct ContainerdPullTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    @Test func pullsTwoRegistriesThroughOneEndpointRoutedByNamespace() async throws {
        let hubImage = try ImageFixture.make(.dockerManifestList)
        let ghcrImage = try ImageFixture.make(.ociIndex)
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await UpstreamRegistry.with(name: "ghcr") { ghcr in
                try await skopeo.push(hubImage, to: hub.hostPort, repository: "library/app")
                try await skopeo.push(ghcrImage, to: ghcr.hostPort, repository: "org/tool")
                var config = GatewayConfig.upstreams([hub.url])
                config.setRegistry("ghcr.io", upstreams: [(name: "ghcr", url: ghcr.url)])
                try await GatewayProcess.with(config) { gateway in
                    try await ContainerdDaemon.with { containerd in
                        let hosts = try containerd.writeHostsDir(registries: [
                            (host: "docker.io", mirrorURL: gateway.url),
                            (host: "ghcr.io", mirrorURL: gateway.url),
                        ])
                        let fromHub = try await containerd.fetch(ref: "docker.io/library/app:v1", hostsDir: hosts, platform: nil, allPlatforms: true)
                        #expect(fromHub.succeeded, "\(fromHub.stderr)")
                        let fromGHCR = try await containerd.fetch(ref: "ghcr.io/org/tool:v1", hostsDir: hosts, platform: nil, allPlatforms: true)
                        #expect(fromGHCR.succeeded, "\(fromGHCR.stderr)")

                        let stored = try await containerd.contentDigests()
                        #expect(hubImage.allDigests.isSubset(of: stored))
                        #expect(ghcrImage.allDigests.isSubset(of: stored))
                        let verified = try containerd.verifyContentStore()
                        #expect(Set(verified.keys) == stored)

                        // Each registry's content came from its own upstream only.
                        #expect(ghcr.requests().allSatisfy { $0.repository == nil || $0.repository == "org/tool" })
                        #expect(hub.requests().allSatisfy { $0.repository == nil || $0.repository == "library/app" })
                        #expect(gateway.logText().contains("registry=ghcr.io"))
                    }
                }
            }
        }
    }

    /// The first upstream is killed before the pull: containerd still gets every digest from
    /// the gateway (the second upstream), without falling back to its `server`.
    @Test func pullSurvivesAKilledFirstUpstream() async throws {
        let image = try ImageFixture.make(.ociImage, layerSizes: [4 << 20, 512 << 10])
        try await UpstreamRegistry.with(name: "up1") { up1 in
            try await UpstreamRegistry.with(name: "up2") { up2 in
                try await skopeo.push(image, to: up1.hostPort, repository: "library/app")
                try await skopeo.push(image, to: up2.hostPort, repository: "library/app")
                try await GatewayProcess.with(FailoverTests.config([up1.url, up2.url])) { gateway in
                    up1.kill(signal: SIGKILL)
                    try await ContainerdDaemon.with { containerd in
                        let hosts = try containerd.writeHostsDir(registries: [(host: "docker.io", mirrorURL: gateway.url)])
                        let result = try await containerd.fetch(ref: "docker.io/library/app:v1", hostsDir: hosts)
                        #expect(result.succeeded, "\(result.stderr)")
                        let stored = try await containerd.contentDigests()
                        #expect(image.allDigests.isSubset(of: stored))
                        try containerd.verifyContentStore()
                    }
                }
            }
        }
    }
}
