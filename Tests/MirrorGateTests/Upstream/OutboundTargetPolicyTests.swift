import Foundation
import MirrorGateConfig
import Testing

@testable import MirrorGateUpstream

/// Where an upstream's redirects and realms may lead (security review, finding 5).
@Suite("OutboundTargetPolicy")
struct OutboundTargetPolicyTests {
    @Test(arguments: [
        ("127.0.0.1", IPAddress.Kind.loopback), ("127.255.0.3", .loopback), ("::1", .loopback), ("[::1]", .loopback),
        ("169.254.169.254", .linkLocal), ("fe80::1", .linkLocal), ("fe80::1%eth0", .linkLocal), ("febf::1", .linkLocal),
        ("10.0.0.1", .privateNetwork), ("172.16.0.1", .privateNetwork), ("172.31.255.255", .privateNetwork), ("192.168.1.1", .privateNetwork),
        ("fc00::1", .privateNetwork), ("fd12:3456::1", .privateNetwork), ("fec0::1", .privateNetwork), ("64:ff9b:1::a", .privateNetwork),
        ("100.64.0.1", .sharedAddressSpace), ("100.127.255.255", .sharedAddressSpace),
        ("0.0.0.0", .unspecified), ("0.1.2.3", .unspecified), ("::", .unspecified),
        ("224.0.0.1", .multicast), ("ff02::1", .multicast), ("255.255.255.255", .reserved), ("240.0.0.1", .reserved),
        ("198.18.0.1", .reserved), ("192.0.2.1", .reserved), ("2001:db8::1", .reserved), ("::127.0.0.1", .reserved),
        // IPv4 inside IPv6 is what it carries.
        ("::ffff:127.0.0.1", .loopback), ("::ffff:169.254.169.254", .linkLocal), ("64:ff9b::10.0.0.1", .privateNetwork),
        ("64:ff9b::8.8.8.8", .public), ("2002:7f00:1::1", .reserved), ("2002:0808:0808::1", .public),
        ("8.8.8.8", .public), ("172.32.0.1", .public), ("100.128.0.1", .public), ("169.253.1.1", .public), ("2606:4700::1111", .public),
        ("fbff::1", .public), ("fe00::1", .public),
    ])
    func addressKinds(_ literal: String, _ kind: IPAddress.Kind) throws {
        let address = try #require(IPAddress(literal), "\(literal)")
        #expect(address.kind == kind, "\(literal)")
    }

    @Test(arguments: ["localhost", "registry.example.com", "", "1.2.3", "1.2.3.4.5", "::g", "[::1", "256.0.0.1", "01.02.03.04x"])
    func namesAreNoAddresses(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func addressesPrintAsLiterals() throws {
        #expect(try #require(IPAddress("127.0.0.5")).description == "127.0.0.5")
        #expect(try #require(IPAddress("[0:0:0:0:0:0:0:1]")).description == "::1")
    }

    static func decide(_ target: String, _ targetAddresses: [String], upstream: String = "registry.example.com", _ upstreamAddresses: [String] = ["203.0.113.7"], listed: [String] = []) -> OutboundTargetPolicy.Decision {
        OutboundTargetPolicy.decide(
            targetHost: target, targetAddresses: targetAddresses.compactMap(IPAddress.init), upstreamHost: upstream,
            upstreamAddresses: upstreamAddresses.compactMap(IPAddress.init), listed: listed)
    }

    static func refused(_ decision: OutboundTargetPolicy.Decision) -> Bool {
        if case .refused = decision { return true }
        return false
    }

    @Test func publicTargetsAreAllowedAndPinned() {
        #expect(Self.decide("production.cloudflare.docker.com", ["104.16.1.1", "2606:4700::6810:101"]) == .allowed(pin: IPAddress("104.16.1.1")))
    }

    @Test func internalTargetsAreRefused() {
        #expect(Self.refused(Self.decide("169.254.169.254", ["169.254.169.254"])))
        #expect(Self.refused(Self.decide("metadata.internal", ["169.254.169.254"])))
        // One non-public answer is enough: the connection could go to it.
        #expect(Self.refused(Self.decide("mixed.example", ["104.16.1.1", "10.0.0.5"])))
        #expect(Self.refused(Self.decide("nowhere.example", [])))
        // A loopback upstream may not send the gateway to another loopback address.
        #expect(Self.refused(Self.decide("127.0.0.5", ["127.0.0.5"], upstream: "127.0.0.1", ["127.0.0.1"])))
        #expect(Self.refused(Self.decide("localhost", ["127.0.0.1", "::1"], upstream: "127.0.0.2", ["127.0.0.2"])))
        // Nor a private upstream to the rest of its network.
        #expect(Self.refused(Self.decide("10.0.0.6", ["10.0.0.6"], upstream: "harbor.corp", ["10.0.0.5"])))
    }

    @Test func theUpstreamsOwnHostAndListedHostsAreAllowed() {
        // Its own address (another port of itself), by address or by name.
        #expect(Self.decide("127.0.0.1", ["127.0.0.1"], upstream: "127.0.0.1", ["127.0.0.1"]) == .allowed(pin: nil))
        #expect(Self.decide("127.0.0.1", ["127.0.0.1"], upstream: "registry.local", ["127.0.0.1"]) == .allowed(pin: IPAddress("127.0.0.1")))
        #expect(Self.decide("HARBOR.corp.", [], upstream: "harbor.corp", ["10.0.0.5"]) == .allowed(pin: nil))
        #expect(Self.decide("[::1]", [], upstream: "::1", ["::1"]) == .allowed(pin: nil))
        #expect(Self.decide("minio.corp", ["10.0.0.6"], upstream: "harbor.corp", ["10.0.0.5"], listed: ["minio.corp"]) == .allowed(pin: nil))
        #expect(Self.decide("10.0.0.6", ["10.0.0.6"], upstream: "harbor.corp", ["10.0.0.5"], listed: ["10.0.0.6"]) == .allowed(pin: nil))
    }

    static func upstream(_ url: String, extra: String = "") throws -> Upstream {
        let config = try ConfigLoader(environment: [:]).load(yaml: """
            registries:
              evil.test:
                upstreams:
                  - url: \(url)\(extra)
            """)
        return Upstream(registry: "evil.test", config: config.registries[0].upstreams[0])
    }

    @Test func theGuardResolvesNamesAndPinsPlainHTTP() async throws {
        let guardian = OutboundGuard()
        let loopback = try Self.upstream("http://127.0.0.1:5000")
        let other = try Self.upstream("http://127.0.0.2:5000")
        // `localhost` resolves to 127.0.0.1 (and ::1 where /etc/hosts says so), never 127.0.0.2.
        await #expect(throws: OutboundGuard.Refusal.self) {
            try await guardian.admit("http://localhost:5001/x", for: other, listed: [])
        }
        let localhost = await guardian.addresses(of: "localhost")
        if localhost == [IPAddress("127.0.0.1")!] {
            // Only the upstream's own address: allowed, and pinned to it.
            #expect(try await guardian.admit("http://localhost:5001/x", for: loopback, listed: []) == .init(url: "http://127.0.0.1:5001/x", host: "localhost:5001"))
            // https is not pinned: the certificate binds the name.
            #expect(try await guardian.admit("https://localhost:5001/x", for: loopback, listed: []) == .init(url: "https://localhost:5001/x", host: nil))
        } else {
            await #expect(throws: OutboundGuard.Refusal.self) {
                try await guardian.admit("http://localhost:5001/x", for: loopback, listed: [])
            }
        }
        await #expect(throws: OutboundGuard.Refusal.self) {
            try await guardian.admit("http://127.0.0.2:5001/x", for: loopback, listed: [])
        }
        #expect(try await guardian.admit("http://127.0.0.1:5001/x?a=1", for: loopback, listed: []) == .init(url: "http://127.0.0.1:5001/x?a=1", host: nil))
        #expect(try await guardian.admit("http://localhost:5001/x", for: loopback, listed: ["localhost"]) == .init(url: "http://localhost:5001/x", host: nil))
        let named = try Self.upstream("http://localhost:5000")
        #expect(try await guardian.admit("http://LOCALHOST:5001/x", for: named, listed: []) == .init(url: "http://LOCALHOST:5001/x", host: nil))
        #expect(localhost.contains(IPAddress("127.0.0.1")!))
        try await guardian.shutdown()
    }

    /// A plain-http target admitted on its addresses is requested at the checked address, with
    /// its name in `Host`, so a second resolution cannot lead elsewhere.
    @Test func pinningKeepsPathQueryAndTheNameInHost() throws {
        let pinned = OutboundGuard.pin(try #require(URLComponents(string: "http://cdn.example:8080/a/b?sig=1%2B2")), to: try #require(IPAddress("104.16.1.1")))
        #expect(pinned == .init(url: "http://104.16.1.1:8080/a/b?sig=1%2B2", host: "cdn.example:8080"))
        let v6 = OutboundGuard.pin(try #require(URLComponents(string: "http://cdn.example/x")), to: try #require(IPAddress("2606:4700::1")))
        #expect(v6 == .init(url: "http://[2606:4700::1]/x", host: "cdn.example"))
    }
}
