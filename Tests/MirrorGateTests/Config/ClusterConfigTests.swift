import Foundation
import MirrorGateConfig
import Testing

/// `metadata:` and `cluster:`: the shared database of several replicas and their peer port.
@Suite("ClusterConfig")
struct ClusterConfigTests {
    static let registries = """
        registries:
          docker.io:
            upstreams:
              - url: https://mirror.gcr.io
        """
    static let token = "0123456789abcdef0123456789abcdef"
    static let files = ["/run/secrets/pg-password": "s3cret-pg\n", "/run/secrets/peer-token": token + "\r\n", "/run/secrets/short": "abc"]

    static func load(_ top: String, environment: [String: String] = ["POD_IP": "10.1.2.3", "PG_PASSWORD": "from-env"]) throws(ConfigError) -> GatewayConfig {
        let loader = ConfigLoader(environment: environment, readFile: { path in
            guard let content = files[path] else { throw CocoaError(.fileReadNoSuchFile) }
            return content
        })
        return try loader.load(yaml: top + "\n" + registries)
    }

    static func error(_ top: String) -> String {
        do {
            _ = try load(top)
            return "loaded"
        } catch {
            return error.description
        }
    }

    static let cluster = """
        cluster:
          peer_listen: 0.0.0.0:5001
          advertise_url: http://${POD_IP}:5001
          peer_token_file: /run/secrets/peer-token
        """

    @Test func sqliteIsTheDefault() throws {
        let config = try Self.load("listen: 0.0.0.0:5000")
        #expect(config.metadata == MetadataConfig(backend: .sqlite, postgres: nil))
        #expect(config.cluster == nil)
        #expect(config.routingPlan.contains("metadata: sqlite (./data/metadata.sqlite, this replica only)"))
        #expect(try Self.load("metadata: {backend: sqlite}").metadata.backend == .sqlite)
    }

    @Test func theIssuesExample() throws {
        let config = try Self.load("""
            metadata:
              backend: postgres
              postgres:
                url: postgres://mirrorgate@db:5432/mirrorgate
                password_file: /run/secrets/pg-password
                pool_size: 8
            \(Self.cluster)
            """)
        let pg = try #require(config.metadata.postgres)
        #expect(config.metadata.backend == .postgres)
        #expect(pg == PostgresMetadataConfig(
            host: "db", port: 5432, user: "mirrorgate", database: "mirrorgate", sslMode: .prefer, password: Secret("s3cret-pg"),
            passwordFile: "/run/secrets/pg-password", poolSize: 8))
        let cluster = try #require(config.cluster)
        #expect(cluster.peerListen == ListenAddress(host: "0.0.0.0", port: 5001))
        #expect(cluster.advertiseURL.description == "http://10.1.2.3:5001")
        #expect(cluster.peerToken.value == Self.token)
        #expect(cluster.peerTokenFile == "/run/secrets/peer-token")

        // `mirrorgate check` names both, never a secret.
        let plan = config.routingPlan
        #expect(plan.contains("metadata: postgres postgres://mirrorgate@db:5432/mirrorgate (shared by every replica; pool of 8, password from /run/secrets/pg-password)"))
        #expect(plan.contains("cluster: peers served on 0.0.0.0:5001, advertised as http://10.1.2.3:5001, token from /run/secrets/peer-token"))
        #expect(!plan.contains("s3cret-pg"))
        #expect(!plan.contains(Self.token))
        #expect(!"\(config)".contains("s3cret-pg"))
        #expect(!"\(config)".contains(Self.token))
    }

    @Test func urlForms() throws {
        func pg(_ url: String) throws -> PostgresMetadataConfig {
            try #require(try Self.load("metadata: {backend: postgres, postgres: {url: '\(url)', password: '${PG_PASSWORD}'}}\n\(Self.cluster)").metadata.postgres)
        }
        let defaults = try pg("postgresql://gw@DB.Example.com")
        #expect(defaults.host == "db.example.com")
        #expect(defaults.port == 5432)
        #expect(defaults.database == "gw", "libpq's default database is the user's name")
        #expect(defaults.password == Secret("from-env"))
        #expect(defaults.poolSize == 8)
        #expect(defaults.passwordFile == nil)
        let v6 = try pg("postgres://gw@[fd00::5]:6432/cache?sslmode=verify-full")
        #expect(v6.host == "fd00::5")
        #expect(v6.port == 6432)
        #expect(v6.sslMode == .verifyFull)
        #expect(v6.url == "postgres://gw@[fd00::5]:6432/cache?sslmode=verify-full")
    }

    @Test(arguments: [
        ("metadata: {backend: mysql}", "metadata.backend (line 1): 'mysql' is not a metadata backend; use one of sqlite, postgres"),
        ("metadata: {backend: postgres}", "metadata.postgres (line 1): required when metadata.backend is postgres"),
        ("metadata: {postgres: {url: 'postgres://a@b/c'}}", "metadata.postgres (line 1): is set, but metadata.backend is sqlite"),
        ("metadata: {backnd: postgres}", "metadata.backnd (line 1): unknown key 'backnd'; allowed here: backend, postgres"),
        ("metadata: {backend: postgres, postgres: {password: x}}", "metadata.postgres.url (line 1): required key is missing"),
        ("metadata: {backend: postgres, postgres: {url: 'mysql://a@b/c'}}", "metadata.postgres.url (line 1): 'mysql://…@b/c' is not a postgres:// URL"),
        ("metadata: {backend: postgres, postgres: {url: 'postgres://a:hunter2@b/c'}}", "metadata.postgres.url (line 1): put the password in metadata.postgres.password_file or metadata.postgres.password, not in the URL"),
        ("metadata: {backend: postgres, postgres: {url: 'postgres://b/c'}}", "metadata.postgres.url (line 1): the URL names no user"),
        ("metadata: {backend: postgres, postgres: {url: 'postgres://a@b/c?sslmode=allow'}}", "metadata.postgres.url (line 1): sslmode 'allow' is not supported"),
        ("metadata: {backend: postgres, postgres: {url: 'postgres://a@b/c?connect_timeout=3'}}", "metadata.postgres.url (line 1): unknown URL parameter 'connect_timeout'"),
        ("metadata: {backend: postgres, postgres: {url: 'postgres://a@b/c/d'}}", "metadata.postgres.url (line 1): 'c/d' is not a database name"),
        ("metadata: {backend: postgres, postgres: {url: 'postgres://a@b/c', password: x, password_file: /run/secrets/pg-password}}", "metadata.postgres.password_file (line 1): set either password or password_file, not both"),
        ("metadata: {backend: postgres, postgres: {url: 'postgres://a@b/c', password_file: /nope}}", "metadata.postgres.password_file (line 1): cannot read /nope: no such file"),
        ("metadata: {backend: postgres, postgres: {url: 'postgres://a@b/c', pool_size: 1}}", "metadata.postgres.pool_size (line 1): must be between 2 and 1000, found 1"),
        ("metadata: {backend: postgres, postgres: {url: 'postgres://a@b/c', password: '${NOPE}'}}", "metadata.postgres.password (line 1): environment variable NOPE is not set"),
    ])
    func metadataErrorsNameTheKey(yaml: String, expected: String) {
        let message = Self.error(yaml + (yaml.contains("backend: postgres") ? "\n" + Self.cluster : ""))
        #expect(message.hasPrefix(expected), "\(message)")
        #expect(!message.contains("hunter2"))
    }

    static let postgres = "metadata: {backend: postgres, postgres: {url: 'postgres://a@b/c'}}"

    @Test(arguments: [
        ("", "cluster: required when metadata.backend is postgres"),
        ("cluster: {advertise_url: 'http://10.0.0.1:5001', peer_token_file: /run/secrets/peer-token}", "cluster.peer_listen (line 3): required key is missing"),
        ("cluster: {peer_listen: ':5001', peer_token_file: /run/secrets/peer-token}", "cluster.advertise_url (line 3): required key is missing"),
        ("cluster: {peer_listen: ':5001', advertise_url: 'http://10.0.0.1:5001'}", "cluster.peer_token_file (line 3): required key is missing"),
        ("cluster: {peer_listen: ':5000', advertise_url: 'http://10.0.0.1:5000', peer_token_file: /run/secrets/peer-token}", "cluster.peer_listen (line 3): must differ from listen (0.0.0.0:5000)"),
        ("cluster: {peer_listen: ':5001', advertise_url: 'http://0.0.0.0:5001', peer_token_file: /run/secrets/peer-token}", "cluster.advertise_url (line 3): '0.0.0.0' is not an address other replicas can reach"),
        ("cluster: {peer_listen: ':5001', advertise_url: 'ftp://10.0.0.1', peer_token_file: /run/secrets/peer-token}", "cluster.advertise_url (line 3): 'ftp://10.0.0.1' is not an http:// or https:// URL"),
        ("cluster: {peer_listen: ':5001', advertise_url: 'http://10.0.0.1:5001/peer', peer_token_file: /run/secrets/peer-token}", "cluster.advertise_url (line 3): must be scheme://host:port without a path"),
        ("cluster: {peer_listen: ':5001', advertise_url: 'http://10.0.0.1:5001', peer_token_file: /run/secrets/short}", "cluster.peer_token_file (line 3): the token in /run/secrets/short is shorter than 16 characters"),
        ("cluster: {peer_listen: ':5001', advertise_url: 'http://10.0.0.1:5001', peer_token_file: /missing}", "cluster.peer_token_file (line 3): cannot read /missing: no such file"),
        ("cluster: {peer_listen: ':5001', advertise_url: 'http://10.0.0.1:5001', peer_token_file: /run/secrets/peer-token, peers: []}", "cluster.peers (line 3): unknown key 'peers'"),
    ])
    func clusterErrorsNameTheKey(yaml: String, expected: String) {
        let message = Self.error("listen: 0.0.0.0:5000\n\(Self.postgres)\n\(yaml)")
        #expect(message.hasPrefix(expected), "\(message)")
        #expect(!message.contains(Self.token))
    }

    @Test func aClusterNeedsTheSharedDatabase() {
        #expect(Self.error(Self.cluster).hasPrefix("cluster (line 2): needs metadata.backend: postgres"))
    }

    @Test func aMissingPodAddressIsNamed() {
        let message = Self.error("\(Self.postgres)\n\(Self.cluster)".replacingOccurrences(of: "POD_IP", with: "MY_POD_IP"))
        #expect(message == "cluster.advertise_url (line 4): environment variable MY_POD_IP is not set", "\(message)")
    }
}
