#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOPosix

/// Applies ``OutboundTargetPolicy`` to a URL an upstream named (a redirect's `Location`, a
/// token realm): resolves the names, decides, and for plain http pins the connection to the
/// address it checked.
///
/// The residual DNS-rebinding window: AsyncHTTPClient connects by name and resolves again,
/// so a name whose answers change between the check and the connect (a TTL of 0 answering
/// a public address first and 169.254.169.254 next) could still lead elsewhere. For `http`
/// targets this is closed: the request goes to the checked address, with the name in
/// `Host`. For `https` it stays open only to a server that presents a certificate valid for
/// that name, which an internal service does not — unless `skip_tls_verify` is on for the
/// upstream, where the window remains.
final class OutboundGuard: Sendable {
    /// Where to send a request to an admitted URL.
    struct Target: Sendable, Equatable {
        /// The URL to connect to (the admitted one, or with its host replaced by the pinned
        /// address).
        var url: String
        /// The `Host` header to send when `url` was pinned.
        var host: String?
    }

    /// Why a URL was refused (for the operator's log; it may name addresses).
    struct Refusal: Error, Sendable, CustomStringConvertible {
        var description: String
    }

    private let resolver = NIOThreadPool(numberOfThreads: 2)

    init() {
        resolver.start()
    }

    func shutdown() async throws {
        try await resolver.shutdownGracefully()
    }

    /// Checks `url`, named by `upstream`, against the policy with `listed` hosts.
    func admit(_ url: String, for upstream: Upstream, listed: [String]) async throws(Refusal) -> Target {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), let host = components.host, !host.isEmpty else {
            throw Refusal(description: "not a URL with a host")
        }
        let bare = OutboundTargetPolicy.normalized(host)
        let upstreamHost = upstream.config.url.host
        var targetAddresses: [IPAddress] = []
        var upstreamAddresses: [IPAddress] = []
        let named = bare == OutboundTargetPolicy.normalized(upstreamHost) || listed.contains { OutboundTargetPolicy.normalized($0) == bare }
        if !named {
            targetAddresses = await addresses(of: bare)
            if targetAddresses.contains(where: { $0.kind != .public }) { upstreamAddresses = await addresses(of: upstreamHost) }
        }
        switch OutboundTargetPolicy.decide(
            targetHost: bare, targetAddresses: targetAddresses, upstreamHost: upstreamHost, upstreamAddresses: upstreamAddresses, listed: listed)
        {
        case .refused(let reason):
            throw Refusal(description: reason)
        case .allowed(let pin):
            guard let pin, scheme == "http", IPAddress(bare) == nil else { return Target(url: url, host: nil) }
            guard let pinned = Self.pin(components, to: pin) else { throw Refusal(description: "cannot pin \(bare) to \(pin)") }
            return pinned
        }
    }

    /// `components` with the host replaced by `address`, and the original `host[:port]` for
    /// the `Host` header.
    static func pin(_ components: URLComponents, to address: IPAddress) -> Target? {
        var components = components
        guard let host = components.percentEncodedHost else { return nil }
        let authority = components.port.map { "\(host):\($0)" } ?? host
        components.percentEncodedHost = address.isIPv4 ? address.description : "[\(address.description)]"
        return components.string.map { Target(url: $0, host: authority) }
    }

    /// The addresses `host` resolves to (itself, for a literal); none when it does not resolve.
    func addresses(of host: String) async -> [IPAddress] {
        if let literal = IPAddress(host) { return [literal] }
        return (try? await resolver.runIfActive { Self.resolve(host) }) ?? []
    }

    /// Blocking `getaddrinfo(3)` for TCP, both families.
    static func resolve(_ host: String) -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc) || canImport(Musl)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var result: [IPAddress] = []
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            if let address = current.pointee.ai_addr {
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                        var raw = v4.pointee.sin_addr
                        if let ip = IPAddress(bytes: withUnsafeBytes(of: &raw) { Array($0) }) { result.append(ip) }
                    }
                case AF_INET6:
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                        var raw = v6.pointee.sin6_addr
                        if let ip = IPAddress(bytes: withUnsafeBytes(of: &raw) { Array($0) }) { result.append(ip) }
                    }
                default:
                    break
                }
            }
            entry = current.pointee.ai_next
        }
        var seen = Set<IPAddress>()
        return result.filter { seen.insert($0).inserted }
    }
}
