import MirrorGateUpstream
import Testing

@Suite("AuthChallenge")
struct AuthChallengeTests {
    @Test func dockerHub() {
        let header = #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#
        #expect(AuthChallenge.parse(header) == [
            AuthChallenge(scheme: "bearer", parameters: [
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/alpine:pull",
            ]),
        ])
    }

    @Test func ghcr() {
        let header = #"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull""#
        let challenges = AuthChallenge.parse(header)
        #expect(challenges.count == 1)
        #expect(challenges.first?.parameters["realm"] == "https://ghcr.io/token")
        #expect(challenges.first?.parameters["service"] == "ghcr.io")
    }

    @Test func severalChallengesInOneHeader() {
        #expect(AuthChallenge.parse(#"Bearer realm="a",service="b", Basic realm="c""#) == [
            AuthChallenge(scheme: "bearer", parameters: ["realm": "a", "service": "b"]),
            AuthChallenge(scheme: "basic", parameters: ["realm": "c"]),
        ])
    }

    @Test func challengesWithoutParameters() {
        #expect(AuthChallenge.parse("Negotiate, Basic realm=\"x\"") == [
            AuthChallenge(scheme: "negotiate", parameters: [:]),
            AuthChallenge(scheme: "basic", parameters: ["realm": "x"]),
        ])
        #expect(AuthChallenge.parse("Basic") == [AuthChallenge(scheme: "basic", parameters: [:])])
        #expect(AuthChallenge.parse("Basic,Bearer") == [
            AuthChallenge(scheme: "basic", parameters: [:]),
            AuthChallenge(scheme: "bearer", parameters: [:]),
        ])
    }

    @Test func quotedCommasAndEscapedQuotes() {
        let header = #"Bearer realm="https://auth.example.com/token?a=1,b=2",scope="repository:a/b:pull,push",error="say \"hi\", \\ ok""#
        let challenges = AuthChallenge.parse(header)
        #expect(challenges.count == 1)
        #expect(challenges.first?.parameters == [
            "realm": "https://auth.example.com/token?a=1,b=2",
            "scope": "repository:a/b:pull,push",
            "error": #"say "hi", \ ok"#,
        ])
    }

    @Test func unquotedValues() {
        #expect(AuthChallenge.parse("Bearer realm=token-service,service=registry.local, Basic realm=x") == [
            AuthChallenge(scheme: "bearer", parameters: ["realm": "token-service", "service": "registry.local"]),
            AuthChallenge(scheme: "basic", parameters: ["realm": "x"]),
        ])
    }

    @Test func caseInsensitiveSchemeAndParameterNames() {
        let parsed = AuthChallenge.parse(#"BEARER REALM="https://Auth.Example.com/Token",Service="Registry""#)
        #expect(parsed == [
            AuthChallenge(scheme: "bearer", parameters: ["realm": "https://Auth.Example.com/Token", "service": "Registry"]),
        ])
        #expect(AuthChallenge.parse("bAsIc ReAlM=\"r\"") == [AuthChallenge(scheme: "basic", parameters: ["realm": "r"])])
    }

    @Test func whitespaceTolerance() {
        let header = "  Bearer   realm = \"a\" ,\tservice=\"b\" ,  , Basic\trealm=\"c\"  "
        #expect(AuthChallenge.parse(header) == [
            AuthChallenge(scheme: "bearer", parameters: ["realm": "a", "service": "b"]),
            AuthChallenge(scheme: "basic", parameters: ["realm": "c"]),
        ])
    }

    @Test func emptyAndDegenerateInputs() {
        #expect(AuthChallenge.parse("").isEmpty)
        #expect(AuthChallenge.parse("   ").isEmpty)
        #expect(AuthChallenge.parse(",,,").isEmpty)
        #expect(AuthChallenge.parse("\"\"").isEmpty)
        #expect(AuthChallenge.parse("Bearer realm=") == [AuthChallenge(scheme: "bearer", parameters: ["realm": ""])])
        #expect(AuthChallenge.parse("Bearer realm=\"unterminated") == [
            AuthChallenge(scheme: "bearer", parameters: ["realm": "unterminated"]),
        ])
        #expect(AuthChallenge.parse("Bearer realm=\"trailing backslash\\") == [
            AuthChallenge(scheme: "bearer", parameters: ["realm": "trailing backslash\\"]),
        ])
    }

    @Test func nonASCIIInQuotedValue() {
        #expect(AuthChallenge.parse("Basic realm=\"Zürich 🐳\"") == [AuthChallenge(scheme: "basic", parameters: ["realm": "Zürich 🐳"])])
    }

    @Test func laterDuplicateParameterWins() {
        #expect(AuthChallenge.parse(#"Bearer realm="a",realm="b""#).first?.parameters["realm"] == "b")
    }

    /// The parser is total: no input crashes or hangs it.
    @Test func garbageNeverCrashes() {
        var rng = SplitMix64(seed: 0x5EED_CAFE)
        let alphabet: [Character] = Array("Bearer Basic realm service scope = , \" \\ \t ; : / ? & é 🐳 \u{0} \r\n ()[]{}<>@!#$%^&*_+|~`'")
        for round in 0..<600 {
            let length = Int(rng.next() % 120)
            var s = ""
            for _ in 0..<length {
                s.append(alphabet[Int(rng.next() % UInt64(alphabet.count))])
            }
            if round % 3 == 0 {
                // Mutate a realistic header instead.
                s = #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""# + s
            }
            let challenges = AuthChallenge.parse(s)
            if round % 3 == 0 {
                #expect(challenges.first?.scheme == "bearer")
            }
            for challenge in challenges {
                #expect(!challenge.scheme.isEmpty)
                #expect(challenge.scheme == challenge.scheme.lowercased())
                #expect(challenge.parameters.keys.allSatisfy { $0 == $0.lowercased() && !$0.isEmpty })
            }
        }
        // Random bytes of all kinds too.
        for _ in 0..<300 {
            let bytes = (0..<Int(rng.next() % 200)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            for challenge in AuthChallenge.parse(String(decoding: bytes, as: UTF8.self)) {
                #expect(!challenge.scheme.isEmpty)
            }
        }
    }
}

/// A small deterministic generator, so a failure of the garbage test can be reproduced.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
