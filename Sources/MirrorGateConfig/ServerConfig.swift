/// `log:`: how log lines are written.
public struct LogConfig: Sendable, Equatable {
    /// `text` (swift-log's stream layout), `json` (one object per line) or `logfmt`; control
    /// characters are escaped in all three.
    public enum Format: String, Sendable, Equatable, CaseIterable {
        case text
        case json
        case logfmt
    }

    public var format: Format
    /// swift-log level name: trace, debug, info, notice, warning, error, critical.
    public var level: String

    public init(format: Format = .text, level: String = "info") {
        self.format = format
        self.level = level
    }

    /// The levels `level` accepts.
    public static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
}

/// `tls:`: serve HTTPS with this certificate chain and key (PEM files, re-read on SIGHUP).
public struct ListenerTLSConfig: Sendable, Equatable {
    public var certificatePath: String
    public var keyPath: String
    public init(certificatePath: String, keyPath: String) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }
}

/// `auth:`: require HTTP Basic credentials checked against an htpasswd file (bcrypt entries).
public struct InboundAuthConfig: Sendable, Equatable {
    public var htpasswdPath: String
    /// Realm named in the `WWW-Authenticate` challenge.
    public var realm: String
    /// Failed password checks one client address may make within ``failureWindow`` before its
    /// further attempts get 429 without being checked.
    public var maxFailures: Int
    /// The sliding window ``maxFailures`` counts in.
    public var failureWindow: Duration
    public init(htpasswdPath: String, realm: String = "MirrorGate", maxFailures: Int = 20, failureWindow: Duration = .seconds(60)) {
        self.htpasswdPath = htpasswdPath
        self.realm = realm
        self.maxFailures = maxFailures
        self.failureWindow = failureWindow
    }
}

/// `shutdown:`: how a graceful stop (SIGTERM, SIGINT) proceeds.
///
/// At once `/readyz` fails, so load balancers and Kubernetes stop sending new clients; new
/// connections are still accepted for ``grace`` (the time endpoint lists take to update), then
/// the listener closes and in-flight responses are sent to their last byte for at most
/// ``drainTimeout`` before the rest are cut.
public struct ShutdownConfig: Sendable, Equatable {
    public var grace: Duration
    public var drainTimeout: Duration

    public init(grace: Duration = .seconds(5), drainTimeout: Duration = .seconds(60)) {
        self.grace = grace
        self.drainTimeout = drainTimeout
    }
}

/// `limits:`: protection against slow or greedy clients.
public struct LimitsConfig: Sendable, Equatable {
    /// Largest request head (request line and headers together), in bytes.
    public var maxHeaderSize: Int
    /// A connection with no complete request head for this long is closed (covers clients that
    /// trickle a head byte by byte, and idle keep-alive connections); a request body must also
    /// be complete within this long of its head.
    public var idleTimeout: Duration
    /// A response whose client reads nothing for this long is abandoned and the connection closed.
    public var sendTimeout: Duration
    /// Upstream blob fetches running at once; more wait their turn (their clients wait too).
    /// No one registry's upstreams may hold more than three quarters of them.
    public var maxConcurrentFetches: Int
    /// A blob fetch slower than this (bytes per second, averaged over ``fetchRateGrace``) is
    /// that upstream's failure: the fetch moves on to the next upstream.
    public var minFetchRate: UInt64
    /// How long a fetch may run below ``minFetchRate`` (also the window the rate is taken over).
    public var fetchRateGrace: Duration
    /// Client connections open at once on `listen`; more are closed as they arrive. Lowered at
    /// start when the open-file limit cannot afford it.
    public var maxConnections: Int

    public init(
        maxHeaderSize: Int = 64 << 10, idleTimeout: Duration = .seconds(60), sendTimeout: Duration = .seconds(60),
        maxConcurrentFetches: Int = 32, maxConnections: Int = 4096,
        minFetchRate: UInt64 = 16 << 10, fetchRateGrace: Duration = .seconds(30)
    ) {
        self.maxHeaderSize = maxHeaderSize
        self.idleTimeout = idleTimeout
        self.sendTimeout = sendTimeout
        self.maxConcurrentFetches = maxConcurrentFetches
        self.minFetchRate = minFetchRate
        self.fetchRateGrace = fetchRateGrace
        self.maxConnections = maxConnections
    }
}
