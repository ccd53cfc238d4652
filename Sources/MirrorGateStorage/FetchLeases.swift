import Foundation
import RegistryModel

/// Who holds or wants a lease: one gateway process.
///
/// `id` must differ between two processes even with the same pod name, so a replica that
/// restarts under its old name never mistakes the leases of its previous life for its own:
/// ``replica(name:url:)`` appends a boot UUID.
public struct LeaseOwner: Sendable, Hashable, CustomStringConvertible {
    /// The replica's identity (`<pod name>/<boot UUID>`).
    public let id: String
    /// Where other replicas stream what this one is fetching (its peer endpoint,
    /// `cluster.advertise_url`).
    public let url: String

    public init(id: String, url: String) {
        self.id = id
        self.url = url
    }

    /// An owner for this process: `name` (the pod name) plus a fresh boot UUID.
    public static func replica(name: String, url: String, boot: UUID = UUID()) -> LeaseOwner {
        LeaseOwner(id: "\(name)/\(boot.uuidString.lowercased())", url: url)
    }

    public var description: String { id }
}

/// What a lease is on. Blobs are global (content-addressed, stored once per registry); a
/// manifest fetched by digest costs a pull of a repository's budget, so its key names the
/// repository.
public struct LeaseKey: Sendable, Hashable, CustomStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }

    /// `blob:<registry>/<digest>`
    public static func blob(registry: String, digest: Digest) -> LeaseKey {
        LeaseKey("blob:\(registry)/\(digest)")
    }

    /// `manifest:<registry>/<repository>@<digest>`
    public static func manifest(registry: String, repository: String, digest: Digest) -> LeaseKey {
        LeaseKey("manifest:\(registry)/\(repository)@\(digest)")
    }

    public var description: String { value }
}

/// A lease this process holds: proof of ownership for heartbeats and release. `generation`
/// is the fencing token: every successful claim, takeovers included, gets a larger one than
/// any before it (it never repeats, not even after a release), so a holder that lost its
/// lease (it stalled past the expiry and another replica claimed the key) cannot extend or
/// release the new holder's lease.
public struct FetchLease: Sendable, Hashable {
    public let key: LeaseKey
    public let owner: String
    public let generation: Int64

    public init(key: LeaseKey, owner: String, generation: Int64) {
        self.key = key
        self.owner = owner
        self.generation = generation
    }
}

/// The live holder of a lease, as any replica sees it.
public struct LeaseHolder: Sendable, Equatable {
    public var key: LeaseKey
    public var owner: String
    /// The holder's peer endpoint (``LeaseOwner/url``).
    public var ownerURL: String
    public var generation: Int64
    /// The object's size once the holder knows it (the upstream answered).
    public var size: UInt64?
    /// Bytes the holder has fetched so far (its last heartbeat).
    public var bytesDone: UInt64
    /// Time left before the lease expires, by the lease store's clock.
    public var remaining: Duration

    public init(key: LeaseKey, owner: String, ownerURL: String, generation: Int64, size: UInt64?, bytesDone: UInt64, remaining: Duration) {
        self.key = key
        self.owner = owner
        self.ownerURL = ownerURL
        self.generation = generation
        self.size = size
        self.bytesDone = bytesDone
        self.remaining = remaining
    }

    /// The lease this holder holds (for comparing generations).
    public var lease: FetchLease { FetchLease(key: key, owner: owner, generation: generation) }
}

/// The answer to a claim.
public enum LeaseClaim: Sendable, Equatable {
    /// This process now holds the lease: fetch, heartbeat, then complete or release.
    case won(FetchLease)
    /// Another process holds a live lease: stream from its ``LeaseHolder/ownerURL``, or wait.
    case held(LeaseHolder)
}

/// Cross-replica single flight: at most one process at a time fetches a key from upstream;
/// the others find the holder, stream from it, and take over when it goes away.
///
/// Contract of every implementation:
/// - All lease times come from the lease store's own clock (PostgreSQL's `now()`), never from
///   a replica: replicas' clocks are never compared.
/// - ``claim(_:owner:ttl:)`` is atomic: among any number of concurrent claims on a key with no
///   live lease, exactly one wins. A lease whose TTL ran out without a heartbeat is dead: the
///   next claim wins it with a larger generation (takeover).
/// - ``heartbeat(_:ttl:size:bytesDone:)`` extends only the exact lease (key, owner and
///   generation) and returns `false` once it is lost: the holder is fenced, and must stop
///   acting as the holder (it may finish its own client's response, and its commit must be
///   idempotent: same key, same verified bytes).
/// - ``release(_:)`` and ``complete(_:saving:link:)`` end only the exact lease; releasing a
///   lost lease is a no-op. Both wake the waiters of ``waitForRelease(_:generation:timeout:)``
///   on every replica.
/// - ``waitForRelease(_:generation:timeout:)`` returns soon after the lease of that generation
///   is released, expires or is taken over, or at the timeout. Wake-ups may be lost (a
///   notification is not replayed after a reconnect), so it also polls: it never waits much
///   longer than a poll interval past the event.
/// - Failures of the store throw ``StorageError`` (`.unavailable` when it cannot be reached);
///   a caller then falls back to per-process single flight.
public protocol FetchLeases: Sendable {
    /// Claims `key` for `owner` for `ttl`, unless a live lease of another claim exists.
    func claim(_ key: LeaseKey, owner: LeaseOwner, ttl: Duration) async throws -> LeaseClaim
    /// Extends `lease` to `ttl` from now and records progress; `false` when the lease is lost.
    func heartbeat(_ lease: FetchLease, ttl: Duration, size: UInt64?, bytesDone: UInt64) async throws -> Bool
    /// Ends `lease` without a result (the fetch failed or stopped): the next claim wins at once.
    func release(_ lease: FetchLease) async throws
    /// Ends `lease` with its result: in one transaction, saves `object` (as
    /// ``ObjectIndex/saveObject(_:)`` does), links it to `link` if given, and removes the lease,
    /// so a claim that succeeds afterwards finds the object. The object is saved even when the
    /// lease was lost (the bytes are verified either way); returns whether it was still held.
    @discardableResult
    func complete(_ lease: FetchLease, saving object: ObjectRecord, link: (registry: String, repository: String)?) async throws -> Bool
    /// The live holder of `key`, or nil when none holds it (never claimed, released, expired).
    func holder(_ key: LeaseKey) async throws -> LeaseHolder?
    /// Waits until the lease of `generation` on `key` is no longer live, or `timeout` passes;
    /// returns the live holder then (nil: none; the same generation: the timeout passed).
    func waitForRelease(_ key: LeaseKey, generation: Int64, timeout: Duration) async throws -> LeaseHolder?
}

/// Who runs the cache eviction pass. With several replicas on one shared cache, one at a time
/// does; a replica that dies hands over to another within a lease TTL.
public protocol JanitorLeadership: Sendable {
    /// Whether this process may run an eviction pass now. Asked before every pass; holding it
    /// also renews it. `false` when another replica leads, or when leadership cannot be
    /// established (the store is down): no two janitors ever evict at once.
    func mayEvict() async -> Bool
}

/// The leadership of a gateway that is the only one using its cache: always itself.
public struct SoleJanitor: JanitorLeadership {
    public init() {}
    public func mayEvict() async -> Bool { true }
}
