import NIOCore

/// Failed password checks per client address in a sliding window: once an address has had
/// `limit` failures within `window`, its unverified attempts are refused (429 with
/// `Retry-After`) without running bcrypt, until the oldest of them leaves the window.
///
/// Pure state; ``InboundAuthenticator`` holds it under its lock. Only failures are recorded:
/// successful and remembered credentials never count, so clients with the right password are
/// not slowed by their own traffic. Memory is bounded by `maxClients` addresses.
struct AuthFailureLimiter: Sendable {
    let limit: Int
    let window: Duration
    let maxClients: Int
    /// Failure instants per client, oldest first, at most `limit` each.
    private(set) var failures: [String: [ContinuousClock.Instant]] = [:]

    init(limit: Int, window: Duration, maxClients: Int = 10_000) {
        self.limit = max(1, limit)
        self.window = window
        self.maxClients = max(1, maxClients)
    }

    /// How long `client` must wait, or nil when it may try now.
    func retryAfter(client: String, now: ContinuousClock.Instant) -> Duration? {
        guard let recent = failures[client] else { return nil }
        let inWindow = recent.filter { now - $0 < window }
        guard inWindow.count >= limit, let oldest = inWindow.first else { return nil }
        return oldest + window - now
    }

    /// Records a failed check by `client`.
    mutating func recordFailure(client: String, now: ContinuousClock.Instant) {
        var recent = (failures[client] ?? []).filter { now - $0 < window }
        recent.append(now)
        if recent.count > limit { recent.removeFirst(recent.count - limit) }
        if failures[client] == nil, failures.count >= maxClients { makeRoom(now: now) }
        failures[client] = recent
    }

    /// Forgets expired clients; if none had expired, the one whose last failure is oldest.
    private mutating func makeRoom(now: ContinuousClock.Instant) {
        failures = failures.filter { _, instants in instants.last.map { now - $0 < window } ?? false }
        if failures.count >= maxClients, let stalest = failures.min(by: { ($0.value.last ?? now) < ($1.value.last ?? now) })?.key {
            failures[stalest] = nil
        }
    }

    /// The key an address is limited under: the IPv4 address, or the /64 of an IPv6 one (a
    /// single host usually holds a whole /64), or `unknown`.
    static func clientKey(_ address: SocketAddress?) -> String {
        guard let address else { return "unknown" }
        switch address {
        case .v4:
            return address.ipAddress ?? "unknown"
        case .v6(let v6):
            let words = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0.prefix(8)) }
            if words.prefix(8) == [0, 0, 0, 0, 0, 0, 0, 0], let ip = address.ipAddress, ip.hasPrefix("::ffff:") {
                return String(ip.dropFirst(7))  // IPv4-mapped
            }
            return stride(from: 0, to: 8, by: 2).map { String(UInt16(words[$0]) << 8 | UInt16(words[$0 + 1]), radix: 16) }.joined(separator: ":") + "::/64"
        case .unixDomainSocket:
            return "unix"
        }
    }
}
