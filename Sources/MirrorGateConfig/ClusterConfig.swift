/// `metadata:`: where the tag index, object index, budgets and leases live.
public struct MetadataConfig: Sendable, Equatable {
    public enum Backend: String, Sendable, Equatable, CaseIterable {
        /// One SQLite file inside `storage.path`: a single replica.
        case sqlite
        /// A PostgreSQL database shared by every replica (`metadata.postgres`, `cluster`).
        case postgres
    }

    public var backend: Backend
    /// Set exactly when ``backend`` is `.postgres`.
    public var postgres: PostgresMetadataConfig?

    public init(backend: Backend = .sqlite, postgres: PostgresMetadataConfig? = nil) {
        self.backend = backend
        self.postgres = postgres
    }
}

/// `metadata.postgres:`: the shared database.
public struct PostgresMetadataConfig: Sendable, Equatable {
    /// libpq's `sslmode` values this gateway supports.
    public enum SSLMode: String, Sendable, Equatable, CaseIterable {
        case disable
        case prefer
        case require
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var sslMode: SSLMode
    /// From `password` or the file `password_file` names; nil: none (trust authentication).
    public var password: Secret?
    /// The file the password came from, for `mirrorgate check` (never the password).
    public var passwordFile: String?
    /// `pool_size`: connections each replica may open.
    public var poolSize: Int

    public init(
        host: String, port: Int = 5432, user: String, database: String, sslMode: SSLMode = .prefer, password: Secret? = nil,
        passwordFile: String? = nil, poolSize: Int = 8
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.database = database
        self.sslMode = sslMode
        self.password = password
        self.passwordFile = passwordFile
        self.poolSize = poolSize
    }

    /// `postgres://user@host:port/database` (never a password).
    public var url: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(user)@\(h):\(port)/\(database)" + (sslMode == .prefer ? "" : "?sslmode=\(sslMode.rawValue)")
    }
}

/// `cluster:`: how replicas that share one database reach each other.
public struct ClusterConfig: Sendable, Equatable {
    /// `peer_listen`: where this replica serves in-flight blobs to the others.
    public var peerListen: ListenAddress
    /// `advertise_url`: how the other replicas reach ``peerListen`` (the pod's address).
    public var advertiseURL: UpstreamURL
    /// The shared secret peer requests must carry (from `peer_token_file`).
    public var peerToken: Secret
    /// The file the token came from, for `mirrorgate check`.
    public var peerTokenFile: String

    public init(peerListen: ListenAddress, advertiseURL: UpstreamURL, peerToken: Secret, peerTokenFile: String) {
        self.peerListen = peerListen
        self.advertiseURL = advertiseURL
        self.peerToken = peerToken
        self.peerTokenFile = peerTokenFile
    }

    /// The shortest peer token accepted: it is the only thing between the peer port and
    /// whoever can reach it.
    public static let minimumTokenLength = 16
}
