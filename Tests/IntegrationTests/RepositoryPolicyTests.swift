import Foundation
import Testing

/// `registries.<key>.policy` against real clients and a real upstream: a denied repository is
/// 403 `DENIED` with a message naming the repository and the rule, in skopeo's, containerd's
/// and dockerd's own words, and nothing about it reaches the upstream or comes from the
/// cache. The policy is re-read on SIGHUP.
@Suite(.serialized)
struct RepositoryPolicyTests {
    static let accept = ("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
    static let notAllowed = "repository docker.io/someone/random is not allowed by this gateway's policy: it matches none of registries.docker.io.policy.allow (library/*)"

    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    /// Allows `library/*` and so denies the rest: skopeo (GET by tag), containerd (HEAD by tag:
    /// the message is in the status line) and dockerd (GET by tag; the docker CLI shows only
    /// the Docker Hub fallback, the mirror's message is in the daemon's log) fail with it.
    @Test func deniedRepositoriesFailInEveryClientAndReachNoUpstream() async throws {
        let allowed = try ImageFixture.make(.dockerImage, layerSizes: [16 << 10])
        let random = try ImageFixture.make(.dockerImage, layerSizes: [16 << 10])
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await skopeo.push(allowed, to: hub.hostPort, repository: "library/allowed")
            try await skopeo.push(random, to: hub.hostPort, repository: "someone/random")
            hub.clearRequests()
            var config = GatewayConfig.upstreams([hub.url])
            config.registries[0].policy = #"{allow: ["library/*"]}"#
            try await GatewayProcess.with(config) { gateway in
                // skopeo
                _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/allowed", reference: allowed.tag)
                do {
                    _ = try await skopeo.pull(from: gateway.hostPort, repository: "someone/random", reference: random.tag)
                    Issue.record("skopeo pulled a denied repository")
                } catch let failure as Skopeo.Failure {
                    #expect(failure.stderr.contains("denied: \(Self.notAllowed)"), "\(failure.stderr)")
                }

                // containerd
                try await ContainerdDaemon.with { daemon in
                    let hosts = try daemon.writeHostsDir(registries: [(host: "docker.io", mirrorURL: gateway.url)])
                    let fetched = try await daemon.fetch(ref: "docker.io/library/allowed:\(allowed.tag)", hostsDir: hosts)
                    #expect(fetched.succeeded, "\(fetched.stderr)")
                    let denied = try await daemon.fetch(ref: "docker.io/someone/random:\(random.tag)", hostsDir: hosts)
                    #expect(!denied.succeeded)
                    #expect(denied.stderr.contains("403 Forbidden: \(Self.notAllowed)"), "\(denied.stderr)")
                }

                // dockerd
                try await DockerDaemon.with(daemonJSON: try DockerdPullTests.shippedDaemonJSON(for: gateway)) { docker in
                    let pulled = try await docker.pull("allowed:\(allowed.tag)")
                    #expect(pulled.succeeded, "\(pulled)")
                    let denied = try await docker.pull("someone/random:\(random.tag)")
                    #expect(!denied.succeeded, "\(denied)")
                    #expect(denied.combinedOutput.contains(Self.notAllowed), "\(denied)")
                    #expect(try await docker.imageIDs().count == 1)
                }

                let upstream = hub.requests().filter { $0.path.hasPrefix("/v2/someone/") }
                #expect(upstream.isEmpty, "a denied request reached the upstream: \(upstream)")
                #expect(!hub.requests().filter { $0.path.hasPrefix("/v2/library/allowed/") }.isEmpty)

                // Every denial is in the log and in the counter, which has no repository label.
                let denials = gateway.logText().split(separator: "\n").filter {
                    $0.contains("denied=registries.docker.io.policy.allow (no match)") && $0.contains("name=someone/random")
                }
                #expect(denials.count >= 3, "\(gateway.logTail())")
                let metrics = PrometheusText(try await HTTPFetch.get("\(gateway.url)/metrics").text)
                #expect(metrics.sum("mirrorgate_policy_denials_total", ["registry": "docker.io"]) == Double(denials.count))
                #expect(!metrics.labelValues.contains { $0.contains("random") })

                // The ledger knows each client by its User-Agent, and has nothing denied.
                let clients = try await PullLedgerReportTests.report(gateway, by: "client")
                #expect(Set(clients.map(\.key)) == ["127.0.0.1 (skopeo)", "127.0.0.1 (containerd)", "127.0.0.1 (docker)"], "\(clients)")
                #expect(try await PullLedgerReportTests.report(gateway, by: "repository").map(\.key) == ["docker.io/library/allowed"])
            }
        }
    }

    /// Content cached before the policy changed is not served once it denies the repository:
    /// not by tag, by digest, as a blob or a tag list, in any form of naming the registry; the
    /// upstream hears nothing of it. SIGHUP applies the policy, logs what waits for a restart,
    /// and keeps the running policy when the file does not load.
    @Test func aReloadedPolicyDeniesCachedContentByTagAndByDigest() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [8 << 10])
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await skopeo.push(fixture, to: hub.hostPort, repository: "library/app")
            try await skopeo.push(fixture, to: hub.hostPort, repository: "library/other")
            var config = GatewayConfig.upstreams([hub.url])
            config.registries[0].policy = #"{allow: ["library/*"]}"#
            let files = try TemporaryDirectory(prefix: "policy-check")
            var rendered = config
            rendered.listenPort = 5000
            try rendered.render().write(to: files.appending("gateway.yaml"), atomically: true, encoding: .utf8)
            let checked = try await MirrorGateCLI.run(["check", "--config", files.appending("gateway.yaml").path])
            #expect(checked.succeeded, "\(MirrorGateCLI.output(checked))")
            #expect(checked.stdoutText.contains("registry docker.io:\n  access: every client (auth is off)\n  policy: allow library/* (registries.docker.io.policy)"), "\(checked.stdoutText)")

            try await GatewayProcess.with(config) { gateway in
                let g = gateway.url
                let urls = [
                    "\(g)/v2/library/app/manifests/\(fixture.tag)",
                    "\(g)/v2/library/app/manifests/\(fixture.topDigest)",
                    "\(g)/v2/library/app/manifests/\(fixture.topDigest)?ns=docker.io",
                    "\(g)/v2/docker.io/library/app/manifests/\(fixture.topDigest)",
                    "\(g)/v2/library/app/blobs/\(fixture.layers[0].digest)",
                ]
                for url in urls {
                    #expect(try await HTTPFetch.get(url, headers: [Self.accept]).status == 200, "\(url)")
                }

                var updated = gateway.config
                updated.registries[0].policy = #"{allow: ["library/*"], deny: ["library/app"]}"#
                updated.tagTTL = "1m"
                try updated.render().write(to: gateway.configURL, atomically: true, encoding: .utf8)
                try await Self.reload(gateway, expecting: 1)
                #expect(gateway.logText().contains("applied=registries.docker.io.policy"), "\(gateway.logTail())")
                #expect(gateway.logText().split(separator: "\n").contains { $0.contains("keys=tags ") && $0.hasSuffix("configuration changes ignored until a restart") },
                        "\(gateway.logTail())")

                hub.clearRequests()
                for url in urls + ["\(g)/v2/library/app/tags/list"] {
                    let answer = try await HTTPFetch.get(url, headers: [Self.accept])
                    #expect(answer.status == 403, "\(url): \(answer.status)")
                    #expect(try envelopeCode(answer.body) == "DENIED")
                    #expect(answer.text.contains("repository docker.io/library/app is denied by this gateway's policy: it matches 'library/app' in registries.docker.io.policy.deny"), "\(answer.text)")
                }
                let head = try await HTTPFetch.head("\(g)/v2/library/app/manifests/\(fixture.tag)", headers: [Self.accept])
                #expect(head.status == 403)
                #expect(hub.requests().isEmpty, "denied requests reached the upstream: \(hub.requests())")
                #expect(try await HTTPFetch.get("\(g)/v2/library/other/manifests/\(fixture.tag)", headers: [Self.accept]).status == 200)

                // A file that does not load changes nothing.
                try "registries: [".write(to: gateway.configURL, atomically: true, encoding: .utf8)
                try await Self.reload(gateway, expecting: 1, message: "configuration not reloaded")
                #expect(try await HTTPFetch.get(urls[0], headers: [Self.accept]).status == 403)
                #expect(try await HTTPFetch.get("\(g)/v2/library/other/manifests/\(fixture.tag)", headers: [Self.accept]).status == 200)

                let metrics = PrometheusText(try await HTTPFetch.get("\(g)/metrics").text)
                #expect(metrics.sum("mirrorgate_policy_denials_total", ["registry": "docker.io"]) == Double(urls.count + 2 + 1))
            }
        }
    }

    /// Sends SIGHUP and waits until the log has `count` lines of `message`.
    static func reload(_ gateway: GatewayProcess, expecting count: Int, message: String = "configuration reloaded") async throws {
        gateway.kill(signal: SIGHUP)
        let deadline = ContinuousClock.now + .seconds(20)
        while gateway.logText().components(separatedBy: message).count - 1 < count {
            guard ContinuousClock.now < deadline else { throw ManagedProcess.Failure("no '\(message)' after SIGHUP\n\(gateway.logTail())") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
