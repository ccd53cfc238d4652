import Foundation
import Testing

/// Issue 12 item 2: an outage of the only upstream must not make the gateway refuse once the
/// upstream is back, and a bad copy of one object must not stop the registry serving others.
@Suite(.serialized)
struct CircuitRecoveryTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// One upstream, threshold 1, a long cool-down and no probe in time to close the circuit:
    /// after the upstream is back, the next pull succeeds at once (every circuit open: the
    /// gateway tries them anyway) instead of 503 "circuit open" until the cool-down ends.
    @Test func theOnlyUpstreamServesAgainTheMomentItIsBack() async throws {
        let fixture = try ImageFixture.make(.ociImage)
        try await UpstreamRegistry.with(name: "origin") { origin in
            try await skopeo.push(fixture, to: origin.hostPort, repository: "library/app")
            var config = GatewayConfig.upstreams([origin.url], tagTTL: "0s")
            config.healthTimeout = "30s"  // cool-down = health.timeout: far longer than the test
            config.healthInterval = "10m"  // no probe closes the circuit meanwhile
            config.failureThreshold = 1
            config.serveStale = false
            try await GatewayProcess.with(config) { gateway in
                origin.kill(signal: SIGKILL)
                let down = try await HTTPFetch.get(
                    "\(gateway.url)/v2/library/app/manifests/v1", headers: [("Accept", "application/vnd.oci.image.manifest.v1+json")])
                #expect(down.status >= 500, "\(down.status) \(down.text)")
                #expect(gateway.logText().contains("circuit opened"), "\(gateway.logTail())")

                try await origin.restart()
                let start = ContinuousClock.now
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/app", reference: "v1")
                #expect(pulled.allDigests == fixture.allDigests)
                #expect(ContinuousClock.now - start < .seconds(25), "the pull waited for the 30 s cool-down")
                #expect(gateway.logText().contains("every upstream's circuit is open: trying them anyway"))
            }
        }
    }

    /// A digest mismatch on one blob opens the only upstream's circuit, but other content of
    /// that upstream is still served, and the bad copy is not fetched from it again.
    @Test func aBadCopyOfOneBlobNeitherBlocksTheRegistryNorIsFetchedAgain() async throws {
        let bad = try ImageFixture.make(.ociImage, tag: "bad", layerSizes: [1 << 20])
        let good = try ImageFixture.make(.ociImage, tag: "good")
        try await UpstreamRegistry.with(name: "origin") { origin in
            try await skopeo.push(bad, to: origin.hostPort, repository: "library/bad", tag: "bad")
            try await skopeo.push(good, to: origin.hostPort, repository: "library/good", tag: "good")
            let layer = try #require(bad.layers.first)
            let path = origin.blobPath(layer.digest)
            var bytes = try Data(contentsOf: path)
            bytes[bytes.count / 2] ^= 0xFF
            try bytes.write(to: path)

            var config = GatewayConfig.upstreams([origin.url])
            config.healthTimeout = "5s"
            config.healthInterval = "10m"
            config.failureThreshold = 1
            try await GatewayProcess.with(config) { gateway in
                let url = "\(gateway.url)/v2/library/bad/blobs/\(layer.digest)"
                _ = try? await HTTPFetch.get(url)
                #expect(gateway.logText().contains("does not match its digest"))
                #expect(gateway.logText().contains("circuit opened"), "\(gateway.logTail())")

                // The registry still serves everything else from that upstream.
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/good", reference: "good")
                #expect(pulled.allDigests == good.allDigests)

                // The bad copy is not asked for again: 502 at once, no second GET upstream.
                let before = origin.blobRequests(repository: "library/bad", digest: layer.digest).count
                let again = try await HTTPFetch.get(url)
                #expect(again.status == 502, "\(again.status) \(again.text)")
                #expect(again.text.contains("bad copy"), "\(again.text)")
                #expect(origin.blobRequests(repository: "library/bad", digest: layer.digest).count == before)
            }
        }
    }
}
