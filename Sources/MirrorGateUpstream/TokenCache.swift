import Foundation

/// Bearer tokens per (upstream, origin and user, realm, service, scope), kept until
/// `issued_at + expires_in` (at least 60 s, as the token spec and distribution's client
/// require), minus a safety margin. Concurrent requests for the same key share one token fetch.
///
/// A token is only ever looked up for the upstream, and the credential, it was obtained for:
/// the key holds the upstream's ``Upstream/ID`` (names repeat across registries), and its
/// origin and user, so that a reload pointing the same upstream at another URL or account
/// finds none of the old tokens. A hostile upstream naming another upstream's realm in its
/// own challenge therefore misses the cache and asks for a token with its own credentials.
actor TokenCache {
    struct Key: Hashable {
        var upstream: Upstream.ID
        /// `scheme://host[:port]/basePath` of the upstream.
        var origin: String
        /// The user the token is asked for (`nil`: anonymous).
        var user: String?
        var realm: String
        var service: String
        var scope: String

        init(upstream: Upstream, realm: String, service: String, scope: String) {
            self.upstream = upstream.id
            origin = upstream.config.url.origin + upstream.config.url.basePath
            user = upstream.config.username
            self.realm = realm
            self.service = service
            self.scope = scope
        }
    }

    private struct Entry {
        var token: String
        var expires: ContinuousClock.Instant
    }

    private var entries: [Key: Entry] = [:]
    private var inflight: [Key: Task<(token: String, lifetime: Duration), any Error>] = [:]
    private let clock = ContinuousClock()

    func token(for key: Key) -> String? {
        guard let entry = entries[key] else { return nil }
        if entry.expires <= clock.now {
            entries[key] = nil
            return nil
        }
        return entry.token
    }

    func store(_ token: String, lifetime: Duration, for key: Key) {
        // Refresh 10 % (at least 5 s) before the token expires.
        let margin = max(lifetime / 10, .seconds(5))
        entries[key] = Entry(token: token, expires: clock.now + max(lifetime - margin, .seconds(1)))
        if entries.count > 10_000 { entries.removeAll() }
    }

    func drop(_ key: Key) {
        entries[key] = nil
    }

    /// The cached token, or the result of `fetch` — run once however many callers wait.
    func token(for key: Key, fetch: @escaping @Sendable () async throws -> (token: String, lifetime: Duration)) async throws -> String {
        if let cached = token(for: key) { return cached }
        if let running = inflight[key] { return try await running.value.token }
        let task = Task { try await fetch() }
        inflight[key] = task
        defer { inflight[key] = nil }
        let result = try await task.value
        store(result.token, lifetime: result.lifetime, for: key)
        return result.token
    }
}
