#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address and the kind of network it belongs to, for deciding where an
/// upstream may send the gateway (``OutboundTargetPolicy``).
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// Where an address leads. Everything but ``public`` reaches the gateway itself, its
    /// host's or its cluster's networks, or nothing routable.
    public enum Kind: String, Sendable {
        case `public`
        /// 127.0.0.0/8, ::1.
        case loopback
        /// 169.254.0.0/16 (cloud metadata services), fe80::/10.
        case linkLocal = "link-local"
        /// RFC 1918 (10/8, 172.16/12, 192.168/16), fc00::/7, fec0::/10, 64:ff9b:1::/48.
        case privateNetwork = "private"
        /// 100.64.0.0/10 (carrier-grade NAT, often a cluster's pod or service network).
        case sharedAddressSpace = "shared address space"
        /// 0.0.0.0/8 ("this network": 0.0.0.0 reaches the gateway's own host), ::.
        case unspecified
        /// 224.0.0.0/4, ff00::/8.
        case multicast
        /// Not routable on the internet: 240/4 and broadcast, 192.0.0/24, benchmarking
        /// (198.18/15), documentation ranges, 100::/64, other ::/8 addresses.
        case reserved
    }

    /// 4 or 16 bytes, network order.
    public let bytes: [UInt8]

    /// Parses a literal: dotted IPv4, or IPv6 with or without brackets (a zone, `%eth0`, is
    /// ignored). `nil` for anything else, host names included.
    public init?(_ literal: String) {
        var text = Substring(literal)
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, String(text), &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
        } else if text.contains(":"), inet_pton(AF_INET6, String(text), &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
    }

    /// From raw bytes (4 or 16).
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    public var isIPv4: Bool { bytes.count == 4 }

    public var kind: Kind {
        isIPv4 ? Self.kind(v4: bytes) : Self.kind(v6: bytes)
    }

    private static func kind(v4 b: [UInt8]) -> Kind {
        switch (b[0], b[1], b[2]) {
        case (0, _, _): .unspecified
        case (10, _, _), (172, 16...31, _), (192, 168, _): .privateNetwork
        case (100, 64...127, _): .sharedAddressSpace
        case (127, _, _): .loopback
        case (169, 254, _): .linkLocal
        case (192, 0, 0), (192, 0, 2), (198, 18...19, _), (198, 51, 100), (203, 0, 113): .reserved
        case (224...239, _, _): .multicast
        case (240...255, _, _): .reserved
        default: .public
        }
    }

    private static func kind(v6 b: [UInt8]) -> Kind {
        let zeros = { (range: Range<Int>) in range.allSatisfy { b[$0] == 0 } }
        if zeros(0..<16) { return .unspecified }
        if zeros(0..<15), b[15] == 1 { return .loopback }
        // IPv4-mapped (::ffff:a.b.c.d), and NAT64's well-known prefix (64:ff9b::/96): the kind
        // of the IPv4 address inside.
        if zeros(0..<10), b[10] == 0xFF, b[11] == 0xFF { return kind(v4: Array(b[12..<16])) }
        if b[0...3].elementsEqual([0x00, 0x64, 0xFF, 0x9B]), zeros(4..<12) { return kind(v4: Array(b[12..<16])) }
        if b[0...5].elementsEqual([0x00, 0x64, 0xFF, 0x9B, 0x00, 0x01]) { return .privateNetwork }
        // 6to4 (2002::/16) carries an IPv4 address in bytes 2...5.
        if b[0] == 0x20, b[1] == 0x02 { return kind(v4: Array(b[2..<6])) == .public ? .public : .reserved }
        if b[0] == 0 { return .reserved }  // ::/8: IPv4-compatible and other unassigned forms
        if b[0] == 0x01, b[1] == 0x00, zeros(2..<8) { return .reserved }  // 100::/64 discard
        if b[0] == 0x20, b[1] == 0x01, b[2] == 0x0D, b[3] == 0xB8 { return .reserved }  // 2001:db8::/32 documentation
        if b[0] & 0xFE == 0xFC { return .privateNetwork }  // fc00::/7
        if b[0] == 0xFE, b[1] & 0xC0 == 0x80 { return .linkLocal }  // fe80::/10
        if b[0] == 0xFE, b[1] & 0xC0 == 0xC0 { return .privateNetwork }  // fec0::/10, site-local
        if b[0] == 0xFF { return .multicast }
        return .public
    }

    public var description: String {
        var copy = bytes
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = isIPv4 ? AF_INET : AF_INET6
        let text = copy.withUnsafeMutableBytes { raw in inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) }
        guard text != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
