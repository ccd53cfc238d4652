import Testing

@testable import MirrorGateCore

/// The peer port's token check: only the exact `Bearer <token>` passes.
@Suite("PeerProtocol")
struct PeerProtocolTests {
    static let token = "3f1c0c5e9a4b7d2e8f6a1b0c9d8e7f6a"

    @Test func onlyTheExactBearerTokenPasses() {
        #expect(PeerProtocol.authorizes("Bearer \(Self.token)", token: Self.token))
        #expect(!PeerProtocol.authorizes(nil, token: Self.token))
        #expect(!PeerProtocol.authorizes("", token: Self.token))
        #expect(!PeerProtocol.authorizes(Self.token, token: Self.token), "the scheme is part of it")
        #expect(!PeerProtocol.authorizes("Bearer \(Self.token.dropLast())", token: Self.token), "a prefix")
        #expect(!PeerProtocol.authorizes("Bearer \(Self.token)0", token: Self.token), "longer")
        #expect(!PeerProtocol.authorizes("Bearer " + String(repeating: "0", count: Self.token.count), token: Self.token))
        #expect(!PeerProtocol.authorizes("Basic \(Self.token)", token: Self.token))
    }

    @Test func aLengthDifferenceOfAMultipleOf256StillFails() {
        // The length check must not wrap (a byte-sized difference would be 0 at 256).
        let long = "Bearer \(Self.token)" + String(repeating: "\0", count: 256)
        #expect(!PeerProtocol.authorizes(long, token: Self.token))
    }
}
