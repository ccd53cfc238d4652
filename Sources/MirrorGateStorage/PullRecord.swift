import Foundation

/// One client manifest request, as the pull ledger keeps it.
public struct PullRecord: Sendable, Equatable {
    public var at: Date
    public var registry: String
    public var repository: String
    /// The tag or digest the client asked for.
    public var reference: String
    /// The digest of the manifest served.
    public var digest: String
    /// The inbound user when the request was authenticated, else the client's address.
    public var client: String
    public var clientKind: ClientKind
    /// A GET answered with the manifest: a pull, as Docker Hub counts them. Otherwise (a HEAD,
    /// or a conditional GET answered 304) it is a check.
    public var isPull: Bool
    /// `hit`, `miss` or `stale`.
    public var cache: String
    /// The upstream that answered, or `cache`.
    public var servedBy: String
    /// The upstream whose pull quota this request spent (an upstream manifest GET on an
    /// upstream that meters pulls); nil when it spent none.
    public var spentOn: String?

    public init(
        at: Date, registry: String, repository: String, reference: String, digest: String, client: String, clientKind: ClientKind,
        isPull: Bool, cache: String, servedBy: String, spentOn: String?
    ) {
        self.at = at
        self.registry = registry
        self.repository = repository
        self.reference = reference
        self.digest = digest
        self.client = client
        self.clientKind = clientKind
        self.isPull = isPull
        self.cache = cache
        self.servedBy = servedBy
        self.spentOn = spentOn
    }
}

/// What kind of client sent a request, from its `User-Agent`.
public enum ClientKind: String, Sendable, Codable, CaseIterable {
    /// containerd (kubelet nodes, `ctr`, nerdctl): `containerd/1.7.2`.
    case containerd
    /// dockerd and BuildKit: `docker/24.0.7 go/go1.20.10 …`, `buildkit/v0.12`.
    case docker
    /// The containers/image family: podman, CRI-O, buildah (`libpod/4.3.1`, `cri-o/1.28.1`,
    /// `containers/5.24.1 (github.com/containers/image)`).
    case podman = "podman/cri-o"
    /// skopeo (`skopeo/1.9.3`), which is containers/image too but names itself.
    case skopeo
    case other

    /// Classifies by the first product token (`name/version`), case-insensitively.
    public init(userAgent: String?) {
        guard let userAgent else {
            self = .other
            return
        }
        let product = userAgent.utf8.prefix { $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: " ") }
        switch String(decoding: product, as: UTF8.self).lowercased() {
        case "containerd": self = .containerd
        case "docker", "docker-client", "buildkit": self = .docker
        case "libpod", "podman", "cri-o", "buildah", "containers": self = .podman
        case "skopeo": self = .skopeo
        default: self = .other
        }
    }
}

/// Ledger requests summed over a window for one combination of what a report groups by.
public struct PullTally: Sendable, Equatable {
    public var registry: String
    public var repository: String
    public var digest: String
    public var client: String
    public var clientKind: ClientKind
    public var servedBy: String
    public var spentOn: String?
    public var pulls: Int
    public var checks: Int
    /// Requests that spent a pull of ``spentOn``'s quota.
    public var spends: Int
    public var lastPull: Date?

    public init(
        registry: String, repository: String, digest: String, client: String, clientKind: ClientKind, servedBy: String, spentOn: String?,
        pulls: Int, checks: Int, spends: Int, lastPull: Date?
    ) {
        self.registry = registry
        self.repository = repository
        self.digest = digest
        self.client = client
        self.clientKind = clientKind
        self.servedBy = servedBy
        self.spentOn = spentOn
        self.pulls = pulls
        self.checks = checks
        self.spends = spends
        self.lastPull = lastPull
    }
}

/// Where the pull ledger lives: the metadata store (``SQLiteMetadataStore`` on one replica; a
/// shared store across replicas). Requests are kept as they came for a day, then folded into
/// hourly roll-ups that keep what reports need (counts per repository, digest, client and
/// upstream, and the last pull) and drop the rest (exact times, references, cache results).
public protocol PullLedgerStore: Sendable {
    /// Appends requests (one batch, one transaction).
    func recordPulls(_ records: [PullRecord]) async throws
    /// Everything since `since`: requests from then on, and roll-ups of hours starting then or
    /// later.
    func pullTallies(since: Date) async throws -> [PullTally]
    /// Folds the requests before `before` (rounded down to the hour) into hourly roll-ups.
    /// Returns how many requests were folded.
    @discardableResult
    func rollUpPulls(before: Date) async throws -> Int
    /// Drops requests before `before` and roll-ups of hours that ended by then. Returns how many
    /// rows went.
    @discardableResult
    func prunePulls(before: Date) async throws -> Int
}
