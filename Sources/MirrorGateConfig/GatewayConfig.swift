/// The whole of `gateway.yaml`, decoded and validated.
public struct GatewayConfig: Sendable, Equatable {
    /// Address the HTTP front binds.
    public var listen: ListenAddress
    public var storage: StorageConfig
    public var tags: TagConfig
    /// Registry used for requests that name none (a configured registry key).
    public var defaultRegistry: String
    public var health: HealthConfig
    /// Registries in the order they appear in the file.
    public var registries: [RegistryConfig]
    /// When set, `/healthz`, `/readyz` and `/metrics` are served here instead of on `listen`.
    public var adminListen: ListenAddress?
    public var log: LogConfig
    /// HTTPS on `listen` when set.
    public var tls: ListenerTLSConfig?
    /// Basic authentication of clients when set.
    public var auth: InboundAuthConfig?
    public var limits: LimitsConfig
    public var shutdown: ShutdownConfig
    /// Where metadata lives: SQLite (one replica) or a shared PostgreSQL database.
    public var metadata: MetadataConfig
    /// How replicas reach each other; set exactly when ``metadata`` is shared.
    public var cluster: ClusterConfig?
    /// The pull ledger (`ledger:`).
    public var ledger: LedgerConfig

    public init(
        listen: ListenAddress,
        storage: StorageConfig,
        tags: TagConfig,
        defaultRegistry: String,
        health: HealthConfig,
        registries: [RegistryConfig],
        adminListen: ListenAddress? = nil,
        log: LogConfig = LogConfig(),
        tls: ListenerTLSConfig? = nil,
        auth: InboundAuthConfig? = nil,
        limits: LimitsConfig = LimitsConfig(),
        shutdown: ShutdownConfig = ShutdownConfig(),
        metadata: MetadataConfig = MetadataConfig(),
        cluster: ClusterConfig? = nil,
        ledger: LedgerConfig = LedgerConfig()
    ) {
        self.listen = listen
        self.storage = storage
        self.tags = tags
        self.defaultRegistry = defaultRegistry
        self.health = health
        self.registries = registries
        self.adminListen = adminListen
        self.log = log
        self.tls = tls
        self.auth = auth
        self.limits = limits
        self.shutdown = shutdown
        self.metadata = metadata
        self.cluster = cluster
        self.ledger = ledger
    }

    /// The registry configured under `key`.
    public func registry(_ key: String) -> RegistryConfig? {
        registries.first { $0.key == key }
    }
}

/// `host:port` to listen on.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// `storage:`: where the cache lives and how large it may grow.
public struct StorageConfig: Sendable, Equatable {
    /// Where blobs are kept (`storage.backend`).
    public enum Backend: String, Sendable, Equatable, CaseIterable {
        /// Files under `path` (also a ReadWriteMany volume shared by replicas).
        case filesystem
        /// Objects in an S3-compatible bucket (`storage.s3`); `path` holds the spools and metadata.
        case s3
    }

    /// Filesystem: the cache root. S3: the local directory of in-flight fetches (and the
    /// SQLite metadata).
    public var path: String
    /// Upper bound of the cache in bytes.
    public var maxSize: UInt64
    /// The largest blob fetched: an upstream announcing more, or sending more, fails for it.
    public var maxBlobSize: UInt64
    public var backend: Backend
    /// Set exactly when `backend` is `.s3`.
    public var s3: S3StorageConfig?

    /// 16 GiB: above the largest layers seen in practice (GPU base images have multi-GiB
    /// layers), far below what a hostile `Content-Length` can claim.
    public static let defaultMaxBlobSize: UInt64 = 16 << 30

    public init(
        path: String, maxSize: UInt64, maxBlobSize: UInt64 = StorageConfig.defaultMaxBlobSize, backend: Backend = .filesystem,
        s3: S3StorageConfig? = nil
    ) {
        self.path = path
        self.maxSize = maxSize
        self.maxBlobSize = maxBlobSize
        self.backend = backend
        self.s3 = s3
    }
}

/// `tags:`: how long tag answers are trusted, and what to do when nobody can answer.
public struct TagConfig: Sendable, Equatable {
    /// A tag→digest answer younger than this is served with no upstream request at all; an
    /// older one (still younger than ``ttl``) is served from the cache at once and
    /// revalidated in the background (RFC 5861's stale-while-revalidate), at most once per
    /// this period per tag. `0s`: revalidate in the background on every request.
    public var refreshAfter: Duration
    /// An answer older than this is not served until an upstream confirms it: the request
    /// waits for the revalidation (`0s`: every request waits).
    public var ttl: Duration
    /// Serve the last known digest when no upstream can answer.
    public var serveStale: Bool

    /// A moved tag is seen within about a minute, at one HEAD per hot tag per minute.
    public static let defaultRefreshAfter = Duration.seconds(60)

    public init(refreshAfter: Duration? = nil, ttl: Duration, serveStale: Bool) {
        self.refreshAfter = refreshAfter ?? min(Self.defaultRefreshAfter, ttl)
        self.ttl = ttl
        self.serveStale = serveStale
    }
}

/// `health:`: probing and timeouts.
public struct HealthConfig: Sendable, Equatable {
    /// Active probe period.
    public var interval: Duration
    /// Connect and first-byte timeout of every upstream request; also the longest a body may stall.
    public var timeout: Duration
    /// Consecutive failures that open an upstream's circuit.
    public var failureThreshold: Int
    public init(interval: Duration, timeout: Duration, failureThreshold: Int) {
        self.interval = interval
        self.timeout = timeout
        self.failureThreshold = failureThreshold
    }
}

/// One registry clients pull from, with its ordered upstreams.
public struct RegistryConfig: Sendable, Equatable {
    /// The registry host clients name (`docker.io`, `ghcr.io`, `registry.example.com:5000`).
    public var key: String
    /// Tried in this order.
    public var upstreams: [UpstreamConfig]
    /// Inbound users allowed to pull through this registry (`users:`, needs `auth:`); nil lets
    /// every authenticated user, or every client when `auth:` is off.
    public var users: [String]?
    /// Which repositories may be pulled (`policy:`); nil allows every one.
    public var policy: RepositoryPolicy?
    public init(key: String, upstreams: [UpstreamConfig], users: [String]? = nil, policy: RepositoryPolicy? = nil) {
        self.key = key
        self.upstreams = upstreams
        self.users = users
        self.policy = policy
    }
}

/// A pull budget: at most `pulls` manifest GETs per `window`.
public struct BudgetConfig: Sendable, Equatable {
    public var pulls: Int
    public var window: Duration
    public init(pulls: Int, window: Duration) {
        self.pulls = pulls
        self.window = window
    }
}

/// A secret that never prints itself.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    /// `dump` and mirrors see no value either.
    public var customMirror: Mirror { Mirror(self, children: []) }
}

/// One upstream registry endpoint.
public struct UpstreamConfig: Sendable, Equatable {
    /// Name used in logs and status; defaults to the URL's host.
    public var name: String
    public var url: UpstreamURL
    /// Repository prefix on the upstream (for example a Harbor proxy project).
    public var prefix: String
    public var username: String?
    public var password: Secret?
    public var budget: BudgetConfig?
    /// When `false`, the upstream serves content by digest only and is never asked for tags.
    public var resolve: Bool
    public var skipTLSVerify: Bool
    /// Extra hosts that may serve this upstream's token realm: they receive its credentials,
    /// and may be on private, loopback or link-local addresses.
    public var authHosts: [String]
    /// Hosts on private, loopback or link-local addresses this upstream may redirect to (a
    /// storage service beside a private registry); public hosts need no listing.
    public var redirectHosts: [String]

    public init(
        name: String,
        url: UpstreamURL,
        prefix: String = "",
        username: String? = nil,
        password: Secret? = nil,
        budget: BudgetConfig? = nil,
        resolve: Bool = true,
        skipTLSVerify: Bool = false,
        authHosts: [String] = [],
        redirectHosts: [String] = []
    ) {
        self.name = name
        self.url = url
        self.prefix = prefix
        self.username = username
        self.password = password
        self.budget = budget
        self.resolve = resolve
        self.skipTLSVerify = skipTLSVerify
        self.authHosts = authHosts
        self.redirectHosts = redirectHosts
    }
}

/// A validated `http://` or `https://` base URL.
public struct UpstreamURL: Sendable, Equatable, CustomStringConvertible {
    public var scheme: String
    public var host: String
    public var port: Int?
    /// Path in front of `/v2/`, without a trailing slash (usually empty).
    public var basePath: String

    public init(scheme: String, host: String, port: Int?, basePath: String) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.basePath = basePath
    }

    /// `scheme://host[:port]`
    public var origin: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port.map { "\(scheme)://\(h):\($0)" } ?? "\(scheme)://\(h)"
    }

    public var description: String { origin + basePath }
}
