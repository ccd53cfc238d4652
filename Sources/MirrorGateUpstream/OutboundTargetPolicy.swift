/// Where an upstream may send the gateway: the targets of its redirects and its token
/// realms, which the upstream names itself and a hostile one would point at the gateway's
/// own network (security review, finding 5: a 302 to a loopback service was fetched and its
/// body served back; a realm on a private port was requested).
///
/// A target is allowed when
/// - it is the upstream's own host (the name in its configured URL), or listed for the
///   upstream (`redirect_hosts` for redirects, `auth_hosts` for realms); or
/// - every address its name resolves to is public, or is one of the upstream's own
///   addresses (a registry redirecting to another port of itself).
///
/// So a loopback upstream (every upstream of the test suite, or a registry beside the
/// gateway) may redirect to itself, but not to another loopback address, and a private
/// upstream not to the rest of the private network, unless the host is listed. "Same kind of
/// address" would have been looser: any private upstream could then send the gateway anywhere
/// on the private network, and a loopback one to every service of the gateway's host.
public enum OutboundTargetPolicy {
    public enum Decision: Equatable, Sendable {
        /// Go there. `pin`: the checked address to connect to, when the decision rested on
        /// the addresses (not on the name); `nil` when the name itself is trusted.
        case allowed(pin: IPAddress?)
        /// Do not; the reason is for the operator's log only (it names addresses).
        case refused(String)
    }

    /// The decision for `targetHost`, which resolved to `targetAddresses`, named by the
    /// upstream on `upstreamHost` (resolved to `upstreamAddresses`).
    ///
    /// - Parameter listed: hosts configured for the upstream (lowercase, without brackets).
    public static func decide(
        targetHost: String, targetAddresses: [IPAddress], upstreamHost: String, upstreamAddresses: [IPAddress], listed: [String]
    ) -> Decision {
        let host = normalized(targetHost)
        if host == normalized(upstreamHost) || listed.contains(where: { normalized($0) == host }) { return .allowed(pin: nil) }
        guard let first = targetAddresses.first else { return .refused("\(host) does not resolve") }
        for address in targetAddresses where address.kind != .public && !upstreamAddresses.contains(address) {
            return .refused("\(host) resolves to \(address), a \(address.kind.rawValue) address that is not the upstream's own")
        }
        return .allowed(pin: first)
    }

    /// Lowercase, without IPv6 brackets or a trailing dot.
    static func normalized(_ host: String) -> String {
        var h = Substring(host.lowercased())
        if h.hasPrefix("["), h.hasSuffix("]") { h = h.dropFirst().dropLast() }
        if h.hasSuffix(".") { h = h.dropLast() }
        return String(h)
    }
}
