import Foundation
import MirrorGateConfig
import Testing

/// `registries.<key>.policy`, `ledger:`, what `mirrorgate check` prints of them, and what a
/// SIGHUP re-read applies.
@Suite("Policy and ledger configuration")
struct PolicyConfigTests {
    static func load(_ yaml: String) throws(ConfigError) -> GatewayConfig {
        try ConfigLoader(environment: [:], readFile: { _ in "alice:x" }).load(yaml: yaml)
    }

    static func error(_ yaml: String) -> String {
        do {
            _ = try load(yaml)
            return "loaded"
        } catch {
            return error.description
        }
    }

    static func hub(policy: String) -> String {
        """
        registries:
          docker.io:
            policy: \(policy)
            upstreams:
              - {name: hub, url: "https://registry-1.docker.io"}
        """
    }

    @Test func policyIsReadWithItsPatterns() throws {
        let config = try Self.load(Self.hub(policy: #"{allow: ["library/*", "bitnami/*", "grafana/grafana"], deny: ["library/*-nightly"]}"#))
        let policy = try #require(config.registry("docker.io")?.policy)
        #expect(policy.allow?.map(\.pattern) == ["library/*", "bitnami/*", "grafana/grafana"])
        #expect(policy.deny.map(\.pattern) == ["library/*-nightly"])
        #expect(config.routingPlan.contains("  policy: allow library/*, bitnami/*, grafana/grafana; deny library/*-nightly (deny wins) (registries.docker.io.policy)"))
        #expect(try Self.load(Self.hub(policy: "{deny: [\"**/*-rc\"]}")).registry("docker.io")?.policy?.allow == nil)
        let open = try Self.load(Self.hub(policy: "{deny: [\"a/b\"]}").replacingOccurrences(of: "    policy: {deny: [\"a/b\"]}\n", with: ""))
        #expect(open.registry("docker.io")?.policy == nil)
        #expect(!open.routingPlan.contains("policy"), "no policy: every repository, nothing to print")
    }

    @Test func badPatternsAreRefusedWithTheirKeyPath() {
        #expect(Self.error(Self.hub(policy: #"{allow: ["library/*", "Library/x"]}"#))
            == "registries.docker.io.policy.allow[1] (line 3): 'Library/x': repository names are lowercase, so 'L' can never match")
        #expect(Self.error(Self.hub(policy: #"{deny: ["library/**x"]}"#)).hasPrefix("registries.docker.io.policy.deny[0] (line 3): 'library/**x': '**' must be a whole path component"))
        #expect(Self.error(Self.hub(policy: #"{allow: ["ubuntu"]}"#)).contains("registries.docker.io.policy.allow[0] (line 3): 'ubuntu' can never match on Docker Hub"))
        #expect(Self.error(Self.hub(policy: #"{allow: ["*"]}"#)).contains("write library/*"))
        #expect(Self.error(Self.hub(policy: #"{allow: []}"#)).hasPrefix("registries.docker.io.policy.allow (line 3): an empty allow list lets nothing through"))
        #expect(Self.error(Self.hub(policy: "{}")).hasPrefix("registries.docker.io.policy (line 3): a policy needs allow, deny or both"))
        #expect(Self.error(Self.hub(policy: #"{allow: ["a/b", "a/b"]}"#)).hasPrefix("registries.docker.io.policy.allow[1] (line 3): 'a/b' is listed twice"))
        #expect(Self.error(Self.hub(policy: #"{allowed: ["a/b"]}"#)).contains("registries.docker.io.policy.allowed"))
        #expect(Self.error(Self.hub(policy: #"{allow: "library/*"}"#)).contains("registries.docker.io.policy.allow (line 3): expected a list"))
        // Another registry has no implicit namespace: a one-component pattern is fine there.
        #expect(Self.error("""
            registries:
              registry.local:5000:
                policy: {allow: [app]}
                upstreams: [{url: "http://registry.local:5000"}]
            """) == "loaded")
    }

    @Test func ledgerRetention() throws {
        let base = "registries:\n  docker.io:\n    upstreams: [{url: \"https://registry-1.docker.io\"}]\n"
        #expect(try Self.load(base).ledger.retention == .seconds(30 * 86_400))
        #expect(try Self.load(base).routingPlan.contains("ledger: every client manifest request kept 30d"))
        #expect(try Self.load(base + "ledger: {retention: 7d}\n").ledger.retention == .seconds(7 * 86_400))
        #expect(try Self.load(base + "ledger: {retention: 5s}\n").ledger.retention == .seconds(5))
        #expect(Self.error(base + "ledger: {retention: 500ms}\n") == "ledger.retention (line 4): must be from 1s to 3650d")
        #expect(Self.error(base + "ledger: {retention: 4000d}\n") == "ledger.retention (line 4): must be from 1s to 3650d")
        #expect(Self.error(base + "ledger: {keep: 1d}\n").hasPrefix("ledger.keep (line 4): unknown key 'keep'"))
    }

    // MARK: Reload

    static let running = """
        auth: {htpasswd: /h}
        listen: 0.0.0.0:5000
        registries:
          docker.io:
            policy: {allow: ["library/*"]}
            upstreams: [{name: hub, url: "https://registry-1.docker.io"}]
          private.example:
            users: [alice]
            upstreams: [{name: cache, url: "https://cache.example"}]
        """

    @Test func reloadAppliesPolicyUsersAndRetention() throws {
        let running = try Self.load(Self.running)
        let file = try Self.load(Self.running
            .replacingOccurrences(of: #"{allow: ["library/*"]}"#, with: #"{allow: ["library/*", "bitnami/*"], deny: ["library/*-rc"]}"#)
            .replacingOccurrences(of: "users: [alice]", with: "users: [alice, bob]") + "\nledger: {retention: 1d}\n")
        let reload = ConfigReload(running: running, file: file)
        #expect(reload.applied == ["registries.docker.io.policy", "registries.private.example.users", "ledger.retention"])
        #expect(reload.needsRestart.isEmpty)
        #expect(reload.config == file)
    }

    @Test func reloadKeepsWhatNeedsARestartAndSaysSo() throws {
        let running = try Self.load(Self.running)
        let file = try Self.load(Self.running
            .replacingOccurrences(of: "0.0.0.0:5000", with: "0.0.0.0:6000")
            .replacingOccurrences(of: "https://cache.example", with: "https://other.example")
            .replacingOccurrences(of: #"{allow: ["library/*"]}"#, with: #"{allow: ["library/*", "bitnami/*"]}"#)
            + "\n  ghcr.io:\n    upstreams: [{url: \"https://ghcr.io\"}]\ntags: {ttl: 1m}\n")
        let reload = ConfigReload(running: running, file: file)
        #expect(reload.applied == ["registries.docker.io.policy"])
        #expect(reload.needsRestart == ["registries.private.example.upstreams", "registries.ghcr.io (added)", "listen", "tags"])
        // The running values stay, except the reloadable one.
        #expect(reload.config.listen.port == 5000)
        #expect(reload.config.registries.map(\.key) == ["docker.io", "private.example"])
        #expect(reload.config.registry("private.example")?.upstreams == running.registry("private.example")?.upstreams)
        #expect(reload.config.registry("docker.io")?.policy == file.registry("docker.io")?.policy)
        #expect(ConfigReload(running: running, file: running) == ConfigReload(running: running, file: running))
        #expect(ConfigReload(running: running, file: running).applied.isEmpty)
    }

    @Test func usersNeedARestartWhenAuthIsOff() throws {
        let open = "registries:\n  docker.io:\n    upstreams: [{url: \"https://registry-1.docker.io\"}]\n"
        let running = try Self.load(open)
        let file = try Self.load("auth: {htpasswd: /h}\n" + open.replacingOccurrences(of: "  docker.io:\n", with: "  docker.io:\n    users: [alice]\n"))
        let reload = ConfigReload(running: running, file: file)
        #expect(reload.applied.isEmpty)
        #expect(reload.needsRestart == ["registries.docker.io.users", "auth"])
        #expect(reload.config.registry("docker.io")?.users == nil)
    }
}
