import Synchronization

/// Which realm and service each upstream last challenged with, so the next request can use a
/// cached token without a round trip to learn the challenge again. A dictionary read on every
/// request: a `Mutex`, not an actor hop.
final class RealmIndex: Sendable {
    private let realms = Mutex<[Upstream.ID: (realm: String, service: String)]>([:])
    func realm(for upstream: Upstream.ID) -> (String, String)? { realms.withLock { $0[upstream] } }
    func set(_ upstream: Upstream.ID, realm: String, service: String) { realms.withLock { $0[upstream] = (realm, service) } }
}

/// Upstreams that asked for Basic authentication (each is then sent its own credentials
/// before it asks again).
final class KnownBasic: Sendable {
    private let ids = Mutex<Set<Upstream.ID>>([])
    func insert(_ id: Upstream.ID) { ids.withLock { _ = $0.insert(id) } }
    func contains(_ id: Upstream.ID) -> Bool { ids.withLock { $0.contains(id) } }
}
