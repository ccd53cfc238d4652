import Foundation
import MirrorGateConfig
import Testing

/// A `readFile` that serves an in-memory file system and fails like Foundation for anything else.
private func fakeFiles(_ files: [String: String]) -> @Sendable (String) throws -> String {
    { path in
        guard let content = files[path] else { throw CocoaError(.fileReadNoSuchFile) }
        return content
    }
}

private func loader(env: [String: String] = [:], files: [String: String] = [:]) -> ConfigLoader {
    ConfigLoader(environment: env, readFile: fakeFiles(files))
}

/// Loads `yaml` and returns the error it fails with (recording an issue when it loads).
private func loadError(
    _ yaml: String, env: [String: String] = [:], files: [String: String] = [:],
    sourceLocation: SourceLocation = #_sourceLocation
) -> ConfigError? {
    #expect(throws: ConfigError.self, sourceLocation: sourceLocation) {
        try loader(env: env, files: files).load(yaml: yaml)
    }
}

/// Expects `.invalid` naming exactly `key` and `line`, and a message containing `message`.
private func expectInvalid(
    _ yaml: String, key: String, line: Int?, message: String? = nil,
    env: [String: String] = [:], files: [String: String] = [:],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let error = loadError(yaml, env: env, files: files, sourceLocation: sourceLocation)
    guard case .invalid(let actualKey, let actualLine, let actualMessage)? = error else {
        Issue.record("expected .invalid(key: \(key), line: \(line.map(String.init) ?? "nil")), got \(String(describing: error))", sourceLocation: sourceLocation)
        return
    }
    #expect(actualKey == key, sourceLocation: sourceLocation)
    #expect(actualLine == line, sourceLocation: sourceLocation)
    if let message {
        #expect(actualMessage.contains(message), "message: \(actualMessage)", sourceLocation: sourceLocation)
    }
    // The rendered error names key and line too.
    let rendered = error!.description
    #expect(rendered.hasPrefix(key), sourceLocation: sourceLocation)
    if let line {
        #expect(rendered.contains("(line \(line))"), sourceLocation: sourceLocation)
    }
}

/// The smallest valid registries section, appended where a test varies something else.
private let minimalRegistries = """
    registries:
      docker.io:
        upstreams:
          - url: https://mirror.gcr.io
    """

@Suite("ConfigLoader")
struct ConfigLoaderTests {
    static let example = """
        listen: 0.0.0.0:5000
        storage:
          path: ./data
          max_size: 50GiB
        tags:
          ttl: 10m
          serve_stale: true
        default_registry: docker.io
        health:
          interval: 15s
          timeout: 2s
          failure_threshold: 3
        registries:
          docker.io:
            upstreams:
              - name: gcr-mirror
                url: https://mirror.gcr.io
              - name: private-cache
                url: https://dhub-cache.example.com
                prefix: ""
                username: ${CACHE_USER}
                password_file: /run/secrets/cache-password
              - name: hub-anonymous
                url: https://registry-1.docker.io
                budget: {pulls: 100, window: 6h}
              - name: hub-authenticated
                url: https://registry-1.docker.io
                username: myuser
                password: ${HUB_TOKEN}
                budget: {pulls: 200, window: 6h}
          ghcr.io:
            upstreams:
              - url: https://ghcr.io
        """
    static let exampleEnv = ["CACHE_USER": "cache-bot", "HUB_TOKEN": "dckr_pat_SECRET-hub-token"]
    static let exampleFiles = ["/run/secrets/cache-password": "cache-SECRET-pw\n"]

    static func loadExample() throws -> GatewayConfig {
        try loader(env: exampleEnv, files: exampleFiles).load(yaml: example)
    }

    // MARK: - The full example

    @Test func fullExample() throws {
        let config = try Self.loadExample()
        #expect(config.listen == ListenAddress(host: "0.0.0.0", port: 5000))
        #expect(config.storage == StorageConfig(path: "./data", maxSize: 50 * 1024 * 1024 * 1024))
        #expect(config.tags == TagConfig(ttl: .seconds(600), serveStale: true))
        #expect(config.defaultRegistry == "docker.io")
        #expect(config.health == HealthConfig(interval: .seconds(15), timeout: .seconds(2), failureThreshold: 3))
        #expect(config.registries.map(\.key) == ["docker.io", "ghcr.io"])

        let hub = try #require(config.registry("docker.io"))
        #expect(hub.upstreams.map(\.name) == ["gcr-mirror", "private-cache", "hub-anonymous", "hub-authenticated"])

        let gcr = hub.upstreams[0]
        #expect(gcr.url == UpstreamURL(scheme: "https", host: "mirror.gcr.io", port: nil, basePath: ""))
        #expect(gcr.url.description == "https://mirror.gcr.io")
        #expect(gcr.prefix == "")
        #expect(gcr.username == nil)
        #expect(gcr.password == nil)
        #expect(gcr.budget == nil)
        #expect(gcr.resolve)
        #expect(!gcr.skipTLSVerify)
        #expect(gcr.authHosts.isEmpty)

        let cache = hub.upstreams[1]
        #expect(cache.url.host == "dhub-cache.example.com")
        #expect(cache.prefix == "")
        #expect(cache.username == "cache-bot")
        #expect(cache.password == Secret("cache-SECRET-pw"))
        #expect(cache.budget == nil)

        let anonymous = hub.upstreams[2]
        #expect(anonymous.url.origin == "https://registry-1.docker.io")
        #expect(anonymous.username == nil)
        #expect(anonymous.password == nil)
        #expect(anonymous.budget == BudgetConfig(pulls: 100, window: .seconds(6 * 3600)))

        let authenticated = hub.upstreams[3]
        #expect(authenticated.username == "myuser")
        #expect(authenticated.password?.value == "dckr_pat_SECRET-hub-token")
        #expect(authenticated.budget == BudgetConfig(pulls: 200, window: .seconds(6 * 3600)))

        let ghcr = try #require(config.registry("ghcr.io"))
        #expect(ghcr.upstreams.count == 1)
        #expect(ghcr.upstreams[0].name == "ghcr.io")
        #expect(ghcr.upstreams[0].url == UpstreamURL(scheme: "https", host: "ghcr.io", port: nil, basePath: ""))
        #expect(config.registry("quay.io") == nil)
    }

    @Test func defaults() throws {
        let config = try loader().load(yaml: minimalRegistries)
        #expect(config.listen == ListenAddress(host: "0.0.0.0", port: 5000))
        #expect(config.storage == StorageConfig(path: "./data", maxSize: 50 << 30))
        #expect(config.tags == TagConfig(ttl: .seconds(600), serveStale: true))
        #expect(config.health == HealthConfig(interval: .seconds(15), timeout: .seconds(2), failureThreshold: 3))
        #expect(config.defaultRegistry == "docker.io")
    }

    @Test func defaultRegistryIsFirstWhenNoDockerHub() throws {
        let config = try loader().load(yaml: """
            registries:
              quay.io:
                upstreams:
                  - url: https://quay.io
              ghcr.io:
                upstreams:
                  - url: https://ghcr.io
            """)
        #expect(config.defaultRegistry == "quay.io")
        #expect(config.registries.map(\.key) == ["quay.io", "ghcr.io"])
    }

    @Test func explicitDefaultRegistry() throws {
        let config = try loader().load(yaml: """
            default_registry: ghcr.io
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
              ghcr.io:
                upstreams:
                  - url: https://ghcr.io
            """)
        #expect(config.defaultRegistry == "ghcr.io")
    }

    @Test func optionalUpstreamKeys() throws {
        let config = try loader().load(yaml: """
            registries:
              registry.local:5000:
                upstreams:
                  - url: HTTP://Harbor.Example.com:8443/base/v2/
                    prefix: /dockerhub-proxy/library/
                    resolve: false
                    skip_tls_verify: yes
                    auth_hosts: [Auth.Example.com, token.example.com]
                    redirect_hosts: [MinIO.corp, 10.0.0.6, "[fd00::6]", "fd00::7"]
              localhost:
                upstreams:
                  - url: http://127.0.0.1:5001
            """)
        let upstream = config.registries[0].upstreams[0]
        #expect(config.registries.map(\.key) == ["registry.local:5000", "localhost"])
        #expect(upstream.url == UpstreamURL(scheme: "http", host: "harbor.example.com", port: 8443, basePath: "/base"))
        #expect(upstream.url.origin == "http://harbor.example.com:8443")
        #expect(upstream.name == "harbor.example.com")
        #expect(upstream.prefix == "dockerhub-proxy/library")
        #expect(!upstream.resolve)
        #expect(upstream.skipTLSVerify)
        #expect(upstream.authHosts == ["auth.example.com", "token.example.com"])
        #expect(upstream.redirectHosts == ["minio.corp", "10.0.0.6", "fd00::6", "fd00::7"])
        #expect(config.registries[1].upstreams[0].redirectHosts.isEmpty)
        #expect(config.routingPlan.contains("token realms also on: auth.example.com, token.example.com"))
        #expect(config.routingPlan.contains("may redirect to: minio.corp, 10.0.0.6, fd00::6, fd00::7"))
        #expect(config.registries[1].upstreams[0].url.origin == "http://127.0.0.1:5001")
    }

    @Test(arguments: [
        ("listen: 127.0.0.1:8080", ListenAddress(host: "127.0.0.1", port: 8080)),
        ("listen: \":8080\"", ListenAddress(host: "0.0.0.0", port: 8080)),
        ("listen: \"[::]:5000\"", ListenAddress(host: "::", port: 5000)),
        ("listen: \"[::1]:443\"", ListenAddress(host: "::1", port: 443)),
        ("listen: localhost:0", ListenAddress(host: "localhost", port: 0)),
        ("listen: 0.0.0.0:65535", ListenAddress(host: "0.0.0.0", port: 65535)),
    ])
    func listenAddresses(_ line: String, _ expected: ListenAddress) throws {
        let config = try loader().load(yaml: line + "\n" + minimalRegistries)
        #expect(config.listen == expected)
    }

    @Test func listenDescription() {
        #expect(ListenAddress(host: "::", port: 5000).description == "[::]:5000")
        #expect(ListenAddress(host: "0.0.0.0", port: 5000).description == "0.0.0.0:5000")
    }

    @Test(arguments: [("serve_stale: false", false), ("serve_stale: no", false), ("serve_stale: off", false),
                      ("serve_stale: True", true), ("serve_stale: on", true), ("serve_stale: yes", true)])
    func booleans(_ line: String, _ expected: Bool) throws {
        let config = try loader().load(yaml: "tags:\n  \(line)\n" + minimalRegistries)
        #expect(config.tags.serveStale == expected)
    }

    // MARK: - Secrets and the environment

    @Test func environmentExpansion() throws {
        let config = try loader(env: ["USER_A": "alice", "PW": "p@ss", "HOST": "mirror.example.com"]).load(yaml: """
            registries:
              docker.io:
                upstreams:
                  - url: https://${HOST}/
                    username: ${USER_A}
                    password: pre-${PW}-post
            """)
        let upstream = config.registries[0].upstreams[0]
        #expect(upstream.url.host == "mirror.example.com")
        #expect(upstream.username == "alice")
        #expect(upstream.password?.value == "pre-p@ss-post")
    }

    @Test(arguments: [
        ("\"pa$$word\"", "pa$word"),
        ("\"$${NOT_EXPANDED}\"", "${NOT_EXPANDED}"),
        ("\"$$$$\"", "$$"),
        ("a$b", "a$b"),
        ("\"cost: 5$\"", "cost: 5$"),
        ("\"${PW}$$${PW}\"", "x$x"),
    ])
    func dollarEscapes(_ value: String, _ expected: String) throws {
        let config = try loader(env: ["PW": "x"]).load(yaml: """
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    username: u
                    password: \(value)
            """)
        #expect(config.registries[0].upstreams[0].password?.value == expected)
    }

    @Test func missingEnvironmentVariable() {
        let error = loadError("""
            registries:
              docker.io:
                upstreams:
                  - url: https://registry-1.docker.io
                    username: myuser
                    password: ${HUB_TOKEN}
            """, env: ["OTHER": "x"])
        #expect(error == .missingEnvironmentVariable(name: "HUB_TOKEN", key: "registries.docker.io.upstreams[0].password", line: 6))
        #expect(error?.description.contains("HUB_TOKEN") == true)
        #expect(error?.description.contains("line 6") == true)
    }

    @Test func missingEnvironmentVariableInFullExample() {
        let error = #expect(throws: ConfigError.self) {
            try loader(env: ["HUB_TOKEN": "t"], files: Self.exampleFiles).load(yaml: Self.example)
        }
        #expect(error == .missingEnvironmentVariable(name: "CACHE_USER", key: "registries.docker.io.upstreams[1].username", line: 21))
    }

    @Test func badVariableReferences() {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    username: u
                    password: ${UNTERMINATED
            """, key: "registries.docker.io.upstreams[0].password", line: 6, message: "unterminated")
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    username: u
                    password: "${}"
            """, key: "registries.docker.io.upstreams[0].password", line: 6, message: "invalid environment variable name")
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    username: u
                    password: "${A-B}"
            """, key: "registries.docker.io.upstreams[0].password", line: 6, message: "invalid environment variable name")
    }

    @Test(arguments: [("s3cret\n", "s3cret"), ("s3cret", "s3cret"), ("s3cret\n\n", "s3cret"), ("s3cret\r", "s3cret"),
                      ("  spaced secret \n", "  spaced secret ")])
    func passwordFileIsReadAndTrailingNewlineStripped(_ content: String, _ expected: String) throws {
        let config = try loader(files: ["/run/secrets/pw": content]).load(yaml: """
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    username: u
                    password_file: /run/secrets/pw
            """)
        #expect(config.registries[0].upstreams[0].password?.value == expected)
    }

    @Test func passwordFilePathIsExpanded() throws {
        let config = try loader(env: ["SECRETS": "/run/secrets"], files: ["/run/secrets/pw": "x\n"]).load(yaml: """
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    username: u
                    password_file: ${SECRETS}/pw
            """)
        #expect(config.registries[0].upstreams[0].password?.value == "x")
    }

    @Test func unreadablePasswordFile() {
        let error = loadError("""
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    username: u
                    password_file: /run/secrets/missing
            """)
        #expect(error == .unreadableSecretFile(
            path: "/run/secrets/missing", key: "registries.docker.io.upstreams[0].password_file", line: 6, reason: "no such file"))
        #expect(error?.description.contains("/run/secrets/missing") == true)
    }

    @Test func unreadablePasswordFileOnDisk() throws {
        // The default readFile reads the real file system.
        let directory = NSTemporaryDirectory() + "mirrorgate-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let present = directory + "/pw"
        try "from-disk\n".write(toFile: present, atomically: true, encoding: .utf8)
        let yaml = { (path: String) in
            """
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    username: u
                    password_file: \(path)
            """
        }
        let config = try ConfigLoader(environment: [:]).load(yaml: yaml(present))
        #expect(config.registries[0].upstreams[0].password?.value == "from-disk")

        let error = #expect(throws: ConfigError.self) { try ConfigLoader(environment: [:]).load(yaml: yaml(directory + "/absent")) }
        guard case .unreadableSecretFile(let path, let key, let line, _)? = error else {
            Issue.record("expected unreadableSecretFile, got \(String(describing: error))")
            return
        }
        #expect(path == directory + "/absent")
        #expect(key == "registries.docker.io.upstreams[0].password_file")
        #expect(line == 6)
    }

    @Test func secretNeverPrintsItsValue() throws {
        let secret = Secret("hunter2")
        #expect("\(secret)" == "<redacted>")
        #expect(String(describing: secret) == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        #expect("\(Optional(secret) as Any)".contains("hunter2") == false)
        #expect(secret.value == "hunter2")

        let config = try Self.loadExample()
        for text in ["\(config)", String(reflecting: config), "\(config.registries[0].upstreams[3])"] {
            #expect(!text.contains("SECRET"), "leaked: \(text)")
        }
    }

    @Test func routingPlanOmitsPasswords() throws {
        let plan = try Self.loadExample().routingPlan
        #expect(!plan.contains("SECRET"))
        #expect(!plan.contains("dckr_pat"))
        #expect(plan.contains("listen: 0.0.0.0:5000"))
        #expect(plan.contains("storage: ./data (max 50GiB, blobs up to 16GiB)"))
        #expect(plan.contains("shutdown: /readyz fails at once, connections accepted for 5s"))
        #expect(plan.contains("tags: refresh_after 1m (then revalidated in the background), ttl 10m, serve_stale true"))
        #expect(plan.contains("default registry: docker.io"))
        #expect(plan.contains("registry docker.io:"))
        #expect(plan.contains("  1. gcr-mirror https://mirror.gcr.io"))
        #expect(plan.contains("credentials: myuser"))
        #expect(plan.contains("credentials: cache-bot"))
        #expect(plan.contains("budget 100/6h"))
        #expect(plan.contains("registry ghcr.io:"))
        #expect(plan.contains("  1. ghcr.io https://ghcr.io"))
    }

    // MARK: - Unknown keys, at each level

    @Test func unknownTopLevelKey() {
        expectInvalid("listen: 0.0.0.0:5000\nlisn: x\n" + minimalRegistries, key: "lisn", line: 2, message: "unknown key 'lisn'")
    }

    @Test func unknownStorageKey() {
        expectInvalid("storage:\n  path: ./data\n  max_sise: 1GiB\n" + minimalRegistries, key: "storage.max_sise", line: 3, message: "unknown key")
    }

    @Test func unknownTagsKey() {
        expectInvalid("tags:\n  tll: 10m\n" + minimalRegistries, key: "tags.tll", line: 2, message: "unknown key")
    }

    @Test func unknownHealthKey() {
        expectInvalid("health:\n  interval: 1s\n  treshold: 3\n" + minimalRegistries, key: "health.treshold", line: 3, message: "unknown key")
    }

    @Test func unknownRegistryKey() {
        expectInvalid("""
            registries:
              docker.io:
                upstream:
                  - url: https://mirror.gcr.io
            """, key: "registries.docker.io.upstream", line: 3, message: "unknown key 'upstream'")
    }

    @Test func unknownUpstreamKey() {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    pasword: x
            """, key: "registries.docker.io.upstreams[0].pasword", line: 5, message: "unknown key 'pasword'")
    }

    @Test func unknownUpstreamKeyInLaterItem() {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                  - url: https://registry-1.docker.io
                    usename: x
            """, key: "registries.docker.io.upstreams[1].usename", line: 6)
    }

    @Test func unknownBudgetKey() {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    budget:
                      pulls: 10
                      window: 6h
                      burst: 2
            """, key: "registries.docker.io.upstreams[0].budget.burst", line: 8, message: "unknown key")
    }

    // MARK: - Wrong types

    @Test func listWhereMappingExpected() {
        expectInvalid("storage: [a, b]\n" + minimalRegistries, key: "storage", line: 1, message: "expected a mapping")
        expectInvalid("tags:\n  - ttl\n" + minimalRegistries, key: "tags", line: 2, message: "found a list")
        expectInvalid("registries: [docker.io]", key: "registries", line: 1, message: "expected a mapping")
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    budget: [100, 6h]
            """, key: "registries.docker.io.upstreams[0].budget", line: 5, message: "expected a mapping")
        let root = loadError("- a\n- b\n")
        guard case .invalid(_, let line, let message)? = root else {
            Issue.record("expected .invalid for a list at the top, got \(String(describing: root))")
            return
        }
        #expect(line == 1)
        #expect(message.contains("expected a mapping"))
    }

    @Test func mappingWhereStringExpected() {
        expectInvalid("listen: {host: a, port: 1}\n" + minimalRegistries, key: "listen", line: 1, message: "expected a string")
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: {scheme: https}
            """, key: "registries.docker.io.upstreams[0].url", line: 4, message: "expected a string")
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    username: u
                    password:
                      value: x
            """, key: "registries.docker.io.upstreams[0].password", line: 7, message: "found a mapping")
    }

    @Test func scalarWhereListOrMappingExpected() {
        expectInvalid("""
            registries:
              docker.io:
                upstreams: https://mirror.gcr.io
            """, key: "registries.docker.io.upstreams", line: 3, message: "expected a list")
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - https://mirror.gcr.io
            """, key: "registries.docker.io.upstreams[0]", line: 4, message: "expected a mapping")
        expectInvalid("""
            registries:
              docker.io: https://mirror.gcr.io
            """, key: "registries.docker.io", line: 2, message: "expected a mapping")
    }

    @Test func badScalarTypes() {
        expectInvalid("tags:\n  serve_stale: maybe\n" + minimalRegistries, key: "tags.serve_stale", line: 2, message: "expected true or false")
        expectInvalid("health:\n  failure_threshold: three\n" + minimalRegistries, key: "health.failure_threshold", line: 2, message: "expected an integer")
        expectInvalid("health:\n  failure_threshold: 1.5\n" + minimalRegistries, key: "health.failure_threshold", line: 2, message: "expected an integer")
    }

    // MARK: - Values

    @Test(arguments: [
        ("listen: 0.0.0.0", "expected host:port"),
        ("listen: 5000", "expected host:port"),
        ("listen: 0.0.0.0:99999", "port must be"),
        ("listen: 0.0.0.0:65536", "port must be"),
        ("listen: \"0.0.0.0:\"", "port must be"),
        ("listen: 0.0.0.0:-1", "port must be"),
        ("listen: 0.0.0.0:http", "port must be"),
        ("listen: 0.0.0.0:+80", "port must be"),  // Int(_:) took the sign
        ("listen: \"0.0.0.0: 80\"", "port must be"),
        ("listen: \"[::]5000\"", "expected host:port"),
        ("listen: \"[::\"", "expected host:port"),
        ("listen: \"\"", "must not be empty"),
    ])
    func badListen(_ line: String, _ message: String) {
        expectInvalid(line + "\n" + minimalRegistries, key: "listen", line: 1, message: message)
    }

    @Test(arguments: ["10x", "-1s", "\"\"", "1.5h", "h", "10", "1h 30m", "ten minutes", "1H"])
    func badDurations(_ value: String) {
        expectInvalid("tags:\n  ttl: \(value)\n" + minimalRegistries, key: "tags.ttl", line: 2, message: "duration")
        expectInvalid("health:\n  interval: \(value)\n" + minimalRegistries, key: "health.interval", line: 2)
        expectInvalid("health:\n  timeout: \(value)\n" + minimalRegistries, key: "health.timeout", line: 2)
    }

    @Test func durationsBelowMinimum() {
        expectInvalid("health:\n  interval: 99ms\n" + minimalRegistries, key: "health.interval", line: 2, message: "at least 100ms")
        expectInvalid("health:\n  timeout: 0\n" + minimalRegistries, key: "health.timeout", line: 2, message: "at least 10ms")
    }

    @Test func zeroTTLIsAllowed() throws {
        let config = try loader().load(yaml: "tags:\n  ttl: 0\n" + minimalRegistries)
        #expect(config.tags.ttl == .zero)
    }

    @Test(arguments: ["50GB", "abc", "\"\"", "1.5GiB", "-1GiB", "50gib", "99999999999999TiB", "9999999999999999", "GiB", "50 GiBs"])
    func badSizes(_ value: String) {
        expectInvalid("storage:\n  max_size: \(value)\n" + minimalRegistries, key: "storage.max_size", line: 2, message: "size")
    }

    @Test func sizeBelowMinimum() {
        expectInvalid("storage:\n  max_size: 1KiB\n" + minimalRegistries, key: "storage.max_size", line: 2, message: "at least 1MiB")
    }

    @Test func sizeWithSpace() throws {
        let config = try loader().load(yaml: "storage:\n  max_size: 2 TiB\n" + minimalRegistries)
        #expect(config.storage.maxSize == 2 << 40)
    }

    @Test func emptyStoragePath() {
        expectInvalid("storage:\n  path: \"\"\n" + minimalRegistries, key: "storage.path", line: 2, message: "must not be empty")
    }

    @Test(arguments: [
        ("ftp://mirror.gcr.io", "http:// or https://"),
        ("https://", "http:// or https://"),
        ("https:///v2/", "http:// or https://"),
        ("mirror.gcr.io", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("https://user:pw@mirror.gcr.io", "credentials"),
        ("https://user@mirror.gcr.io", "credentials"),
        ("https://mirror.gcr.io/?q=1", "query"),
        ("https://mirror.gcr.io/#frag", "fragment"),
        ("https://mirror.gcr.io:0", "port"),
        ("https://mirror.gcr.io:99999", "port"),
        ("\"\"", "must not be empty"),
    ])
    func badURL(_ url: String, _ message: String) {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - name: a
                    url: \(url)
            """, key: "registries.docker.io.upstreams[0].url", line: 5, message: message)
    }

    @Test func missingURL() {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - name: gcr-mirror
                    budget: {pulls: 1, window: 1h}
            """, key: "registries.docker.io.upstreams[0].url", line: 4, message: "required key is missing")
    }

    @Test func emptyUpstreams() {
        expectInvalid("""
            registries:
              docker.io:
                upstreams: []
            """, key: "registries.docker.io.upstreams", line: 3, message: "at least one upstream")
    }

    @Test func missingUpstreams() {
        expectInvalid("""
            registries:
              docker.io: {}
            """, key: "registries.docker.io.upstreams", line: 2, message: "required key is missing")
    }

    @Test func noRegistries() {
        expectInvalid("listen: 0.0.0.0:5000\n", key: "registries", line: 1, message: "required key is missing")
        expectInvalid("listen: 0.0.0.0:5000\nregistries: {}\n", key: "registries", line: 2, message: "at least one registry")
        let empty = loadError("")
        guard case .invalid(let key, _, _)? = empty else {
            Issue.record("expected .invalid for an empty file, got \(String(describing: empty))")
            return
        }
        #expect(key == "registries")
        let onlyComments = loadError("# nothing here\n")
        guard case .invalid(let key2, _, _)? = onlyComments else {
            Issue.record("expected .invalid for a comment-only file, got \(String(describing: onlyComments))")
            return
        }
        #expect(key2 == "registries")
    }

    @Test(arguments: ["docker", "Docker.io", "-bad.example.com", "registry.local:0", "registry.local:99999", "registry.local:abc",
                      "a..b", "docker.io/library", "https://docker.io", "localhost:+5000", "registry.local:+443"])
    func registryKeyThatIsNotAHost(_ key: String) {
        expectInvalid("""
            registries:
              ghcr.io:
                upstreams:
                  - url: https://ghcr.io
              "\(key)":
                upstreams:
                  - url: https://mirror.gcr.io
            """, key: "registries.\(key)", line: 5, message: "is not a registry host")
    }

    @Test(arguments: ["docker.io", "localhost", "localhost:5000", "registry.local:5000", "10.0.0.1:443", "a-b.example.com"])
    func registryHosts(_ key: String) {
        #expect(ConfigLoader.isRegistryHost(key))
    }

    @Test func duplicateUpstreamNames() {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://a.example.com
                    name: same
                  - url: https://b.example.com
                    name: same
            """, key: "registries.docker.io.upstreams[1]", line: 6, message: "'same' is used twice")
    }

    @Test func duplicateDefaultUpstreamNames() {
        // Names default to the URL's host.
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://registry-1.docker.io
                  - url: https://registry-1.docker.io
                    username: u
                    password: p
            """, key: "registries.docker.io.upstreams[1]", line: 5, message: "used twice")
    }

    @Test func sameUpstreamNameInDifferentRegistriesIsFine() throws {
        let config = try loader().load(yaml: """
            registries:
              docker.io:
                upstreams:
                  - {name: primary, url: "https://mirror.gcr.io"}
              ghcr.io:
                upstreams:
                  - {name: primary, url: "https://ghcr.io"}
            """)
        #expect(config.registries.flatMap { $0.upstreams.map(\.name) } == ["primary", "primary"])
    }

    @Test(arguments: ["\"\"", "has space", "slash/name", String(repeating: "n", count: 65), "naïve"])
    func badUpstreamName(_ name: String) {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    name: \(name)
            """, key: "registries.docker.io.upstreams[0].name", line: 5)
    }

    /// `a..b`, `a._b` and `a-.b` passed a looser check than distribution's name grammar
    /// (found by the property suite).
    @Test(arguments: ["Upper/Case", "a//b", "-a", "a b", "a..b", "a._b", "a-.b", "a___b", "lib/a..b", "a/./b"])
    func badPrefix(_ prefix: String) {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    prefix: "\(prefix)"
            """, key: "registries.docker.io.upstreams[0].prefix", line: 5, message: "not a repository path")
    }

    @Test func passwordWithoutUsername() {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://registry-1.docker.io
                    password: p
            """, key: "registries.docker.io.upstreams[0].password", line: 5, message: "needs a username")
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://registry-1.docker.io
                    password_file: /run/secrets/pw
            """, key: "registries.docker.io.upstreams[0].password_file", line: 5, message: "needs a username",
            files: ["/run/secrets/pw": "p"])
    }

    @Test func usernameWithoutPassword() {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://registry-1.docker.io
                    budget: {pulls: 1, window: 1h}
                    username: u
            """, key: "registries.docker.io.upstreams[0].username", line: 6, message: "neither password nor password_file")
    }

    @Test func passwordAndPasswordFileTogether() {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://registry-1.docker.io
                    username: u
                    password: p
                    password_file: /run/secrets/pw
            """, key: "registries.docker.io.upstreams[0].password_file", line: 7, message: "not both",
            files: ["/run/secrets/pw": "p"])
    }

    @Test func budgetMissingPulls() {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://registry-1.docker.io
                    budget: {window: 6h}
            """, key: "registries.docker.io.upstreams[0].budget.pulls", line: 5, message: "required key is missing")
    }

    @Test func budgetMissingWindow() {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://registry-1.docker.io
                    budget:
                      pulls: 100
            """, key: "registries.docker.io.upstreams[0].budget.window", line: 6, message: "required key is missing")
    }

    @Test(arguments: ["500ms", "0", "999ms"])
    func budgetWindowTooSmall(_ window: String) {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://registry-1.docker.io
                    budget:
                      pulls: 100
                      window: \(window)
            """, key: "registries.docker.io.upstreams[0].budget.window", line: 7, message: "at least 1s")
    }

    @Test(arguments: ["0", "-5", "many"])
    func budgetBadPulls(_ pulls: String) {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://registry-1.docker.io
                    budget: {pulls: \(pulls), window: 6h}
            """, key: "registries.docker.io.upstreams[0].budget.pulls", line: 5)
    }

    @Test(arguments: ["0", "-1", "1001"])
    func failureThresholdOutOfRange(_ value: String) {
        expectInvalid("health:\n  failure_threshold: \(value)\n" + minimalRegistries, key: "health.failure_threshold", line: 2,
                      message: "between 1 and 1000")
    }

    @Test func defaultRegistryNotConfigured() {
        expectInvalid("default_registry: quay.io\n" + minimalRegistries, key: "default_registry", line: 1, message: "'quay.io' is not one of the configured registries")
        expectInvalid("default_registry: \"\"\n" + minimalRegistries, key: "default_registry", line: 1, message: "must not be empty")
    }

    @Test func badAuthHosts() {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://registry-1.docker.io
                    auth_hosts:
                      - auth.docker.io
                      - "not a host"
            """, key: "registries.docker.io.upstreams[0].auth_hosts[1]", line: 7, message: "is not a host name")
    }

    @Test(arguments: ["\"minio.corp:9000\"", "\"http://minio.corp\"", "\"not a host\"", "\"*.corp\"", "\"fd00::zz\""])
    func badRedirectHosts(_ host: String) {
        expectInvalid("""
            registries:
              docker.io:
                upstreams:
                  - url: https://harbor.corp
                    redirect_hosts: [minio.corp, \(host)]
            """, key: "registries.docker.io.upstreams[0].redirect_hosts[1]", line: 5, message: "is not a host name or IP address")
    }

    // MARK: - Odd keys

    /// An empty key and a non-scalar key at the top level were reported with an empty key path
    /// (found by the property suite); they name the mapping that holds them.
    @Test func emptyKeyAtTheTopLevel() {
        expectInvalid("listen: 0.0.0.0:5000\n\"\": x\n" + minimalRegistries, key: "(top level)", line: 2, message: "empty key")
        expectInvalid("listen: 0.0.0.0:5000\n? \n: x\n" + minimalRegistries, key: "(top level)", line: 2, message: "empty key")
    }

    @Test func emptyKeyInsideAMapping() {
        expectInvalid("storage:\n  \"\": x\n" + minimalRegistries, key: "storage", line: 2, message: "empty key")
        expectInvalid("registries:\n  \"\":\n    upstreams: []\n", key: "registries", line: 2, message: "empty key")
    }

    @Test func complexKeyAtTheTopLevel() {
        expectInvalid("[a, b]: x\n" + minimalRegistries, key: "(top level)", line: 1, message: "keys must be plain strings")
    }

    // MARK: - YAML syntax

    @Test func syntaxErrorHasALine() {
        let error = loadError("""
            listen: 0.0.0.0:5000
            storage:
              path: ./data
             max_size: 1GiB
            """)
        guard case .syntax(let file, let line, let message)? = error else {
            Issue.record("expected .syntax, got \(String(describing: error))")
            return
        }
        #expect(file == "gateway.yaml")
        #expect(line == 4)
        #expect(!message.isEmpty)
        #expect(error?.description.hasPrefix("gateway.yaml:4: YAML syntax error") == true)
    }

    @Test func unterminatedQuoteIsASyntaxError() {
        let error = #expect(throws: ConfigError.self) {
            try loader().load(yaml: "registries:\n  docker.io:\n    upstreams:\n      - url: \"https://x\n", file: "/etc/mirrorgate.yaml")
        }
        guard case .syntax(let file, let line, _)? = error else {
            Issue.record("expected .syntax, got \(String(describing: error))")
            return
        }
        #expect(file == "/etc/mirrorgate.yaml")
        #expect(line != nil)
    }

    /// A control character is a reader error, which carries an offset rather than a mark; it
    /// came without a line (found by the property suite).
    @Test(arguments: ["\u{1}", "\u{7F}", "\u{1B}[31m"])
    func controlCharacterIsASyntaxErrorWithALine(_ control: String) {
        let error = loadError("listen: 0.0.0.0:5000\n\nregistries:\n  docker.io: x\(control)\n")
        guard case .syntax(_, let line, let message)? = error else {
            Issue.record("expected .syntax, got \(String(describing: error))")
            return
        }
        #expect(line == 4)
        #expect(message.contains("control characters"))
        #expect(error?.description.hasPrefix("gateway.yaml:4: YAML syntax error") == true)
    }

    @Test func unclosedFlowMappingIsASyntaxError() {
        let error = loadError("""
            registries:
              docker.io:
                upstreams:
                  - url: https://registry-1.docker.io
                    budget: {pulls: 100, window: 6h
            """)
        guard case .syntax(_, let line, _)? = error else {
            Issue.record("expected .syntax, got \(String(describing: error))")
            return
        }
        #expect(line != nil)
    }

    // MARK: - Files

    @Test func loadFromFile() throws {
        let path = NSTemporaryDirectory() + "mirrorgate-\(UUID().uuidString).yaml"
        try minimalRegistries.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try loader().load(file: path)
        #expect(config.registries.map(\.key) == ["docker.io"])
    }

    @Test func loadFromMissingFile() {
        let path = NSTemporaryDirectory() + "mirrorgate-absent-\(UUID().uuidString).yaml"
        let error = #expect(throws: ConfigError.self) { try loader().load(file: path) }
        guard case .unreadable(let file, _)? = error else {
            Issue.record("expected .unreadable, got \(String(describing: error))")
            return
        }
        #expect(file == path)
    }

    @Test func syntaxErrorInFileNamesTheFile() throws {
        let path = NSTemporaryDirectory() + "mirrorgate-\(UUID().uuidString).yaml"
        try "registries: [\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = #expect(throws: ConfigError.self) { try loader().load(file: path) }
        guard case .syntax(let file, _, _)? = error else {
            Issue.record("expected .syntax, got \(String(describing: error))")
            return
        }
        #expect(file == path)
    }
}

/// Regression tests for bugs found in review (each case names what it once got wrong).
@Suite("ConfigLoader regressions")
struct ConfigLoaderRegressionTests {
    /// Was a bug: a key repeated in one mapping is reported by Yams as `duplicatedKeysInMapping`, which
    /// `ConfigLoader.load(yaml:file:)` maps to `.syntax(line: nil)`: the error names neither the
    /// key path nor the line, although the Yams error carries the line in `context.mark`.
    @Test func duplicateKeyErrorNamesTheLine() {
        let error = loadError("""
            storage:
              path: ./a
              path: ./b
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
            """)
        switch error {
        case .invalid(let key, let line, _)?:
            #expect(key == "storage.path")
            #expect(line == 2 || line == 3)
        case .syntax(_, let line, let message)?:
            #expect(line == 2 || line == 3, "duplicate key error has no line: \(message)")
        default:
            Issue.record("expected .invalid or .syntax, got \(String(describing: error))")
        }
    }

    /// Was a bug: `password_file` content ending in CRLF (a secret file saved with Windows line
    /// endings) keeps its line ending. `ConfigLoader.upstream(_:)` strips with
    /// `while secret.last == "\n" || secret.last == "\r"`, but in Swift "\r\n" is ONE
    /// `Character` (a grapheme cluster) equal to neither, so the loop never runs and the
    /// password sent upstream is "s3cret\r\n".
    @Test(arguments: ["s3cret\r\n", "s3cret\r\n\r\n", "s3cret\n\r\n"])
    func passwordFileCRLFIsStripped(_ content: String) throws {
        let config = try loader(files: ["/run/secrets/pw": content]).load(yaml: """
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    username: u
                    password_file: /run/secrets/pw
            """)
        #expect(config.registries[0].upstreams[0].password?.value == "s3cret")
    }

    /// Was a bug: an IPv6 upstream URL gets its brackets twice. `URLComponents.host` of
    /// `http://[fd00::5]:5000` is `"[fd00::5]"` (brackets included); `ConfigLoader.upstreamURL`
    /// stores that as `UpstreamURL.host`, and `UpstreamURL.origin` adds brackets again for a host
    /// containing ':', giving `http://[[fd00::5]]:5000`, which `UpstreamClient` then requests.
    @Test func ipv6UpstreamURLHasOneSetOfBrackets() throws {
        let config = try loader().load(yaml: """
            registries:
              registry.local:5000:
                upstreams:
                  - url: http://[fd00::5]:5000/
            """)
        let url = config.registries[0].upstreams[0].url
        #expect(url.port == 5000)
        #expect(url.origin == "http://[fd00::5]:5000")
        #expect(url.description == "http://[fd00::5]:5000")
    }

    /// Was a bug: `listen` with an IPv6 address and no port, written without brackets, is accepted:
    /// `ConfigLoader.listenAddress` splits at the last ':', so `::1` becomes host ":" port 1 and
    /// `fe80::1` becomes host "fe80:" port 1, instead of the "expected host:port" error that
    /// `0.0.0.0` (no port) gets.
    @Test(arguments: ["\"::1\"", "\"fe80::1\"", "\"2001:db8::8080\""])
    func unbracketedIPv6ListenIsRejected(_ value: String) {
        let error = loadError("listen: \(value)\n" + minimalRegistries)
        guard case .invalid(let key, let line, _)? = error else {
            Issue.record("expected .invalid(key: listen, line: 1), got \(String(describing: error))")
            return
        }
        #expect(key == "listen")
        #expect(line == 1)
    }
}
