import Foundation
import NIOCore
import NIOHTTP1
import PropertyBased
import Testing

@testable import MirrorGateUpstream

/// Property checks of what MirrorGate parses from upstream answers: `WWW-Authenticate`,
/// `ratelimit-*` headers and token-service bodies. An upstream is not trusted to send
/// well-formed values; none of them may crash the gateway.
@Suite("Properties: Upstream")
struct UpstreamProperties {
    // MARK: WWW-Authenticate

    static func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { c in
            (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || "!#$%&'*+-.^_`|~/".utf8.contains(c)
        }
    }

    static let challengeExtra = [
        "Bearer ", "Basic ", "bearer", "realm=", "service=", "scope=", "error=", "\"", "\\\"", "\\", ",", ", ", "=", "==",
        "realm=\"https://auth.example/token\"", "scope=\"repository:a/b:pull\"", "\"unterminated", "token68==",
    ]

    @Test func anyHeaderYieldsWellFormedChallenges() async {
        await propertyCheck(count: HostileInput.scaled(3000), input: HostileInput.strings(extra: Self.challengeExtra, maxParts: 30)) { header in
            for challenge in AuthChallenge.parse(header) {
                #expect(Self.isToken(challenge.scheme), "\(header.debugDescription)")
                #expect(challenge.scheme == challenge.scheme.lowercased())
                for name in challenge.parameters.keys {
                    #expect(Self.isToken(name) && name == name.lowercased(), "\(header.debugDescription)")
                }
            }
        }
    }

    /// A value as a server would send it: a token as is sometimes, else a quoted-string with
    /// `"` and `\` escaped.
    static func render(_ value: String, _ rng: inout HostileInput.RNG) -> String {
        if isToken(value), HostileInput.int(&rng, 0...1) == 0 { return value }
        var out = "\""
        for c in value.unicodeScalars {
            if c == "\"" || c == "\\" || HostileInput.int(&rng, 0...15) == 0 { out += "\\" }  // escaping any char is allowed
            out.unicodeScalars.append(c)
        }
        return out + "\""
    }

    static func caseMangled(_ s: String, _ rng: inout HostileInput.RNG) -> String {
        String(s.map { HostileInput.int(&rng, 0...1) == 0 ? Character($0.uppercased()) : $0 })
    }

    struct RenderedChallenge {
        var header: String
        var parameters: [String: String]
    }

    /// `Bearer realm=…,service=…,scope=…` with optional other parameters and challenges around it,
    /// random case in names and optional whitespace (RFC 9110 `OWS` and `BWS`).
    static let bearerChallenge = Generator { rng -> RenderedChallenge in
        var parameters: [String: String] = [:]
        for name in ["realm", "service", "scope", "error"] where name == "realm" || HostileInput.int(&rng, 0...3) > 0 {
            parameters[name] = HostileInput.quotedContent(&rng)
        }
        func ows(_ rng: inout HostileInput.RNG) -> String { HostileInput.pick(["", " ", "  ", "\t", " \t"], &rng) }
        let params = parameters.keys.shuffled(using: &rng).map { name in
            caseMangled(name, &rng) + ows(&rng) + "=" + ows(&rng) + render(parameters[name]!, &rng)
        }
        var header = caseMangled("Bearer", &rng) + " " + params.map { ows(&rng) + $0 + ows(&rng) }.joined(separator: ",")
        if HostileInput.int(&rng, 0...2) == 0 { header = #"Basic realm="other", "# + header }
        if HostileInput.int(&rng, 0...2) == 0 { header += #", Basic realm="x, y""# }
        return RenderedChallenge(header: header, parameters: parameters)
    }

    @Test func generatedChallengesRoundTrip() async {
        await propertyCheck(count: HostileInput.scaled(2000), input: Self.bearerChallenge) { rendered in
            let challenges = AuthChallenge.parse(rendered.header)
            let bearer = try #require(challenges.first { $0.scheme == "bearer" }, "\(rendered.header)")
            #expect(bearer.parameters == rendered.parameters, "\(rendered.header)")
            #expect(challenges.filter { $0.scheme == "bearer" }.count == 1)
            #expect(challenges.allSatisfy { $0.scheme == "bearer" || $0.scheme == "basic" }, "\(rendered.header)")
        }
    }

    // MARK: ratelimit-*

    static let rateLimitExtra = [";", ";w=", "w=", "W=", ",", ", ", "100", "-100", "+100", "0", "21600", "-1", " ", "\t", "comment=\"x\""]

    @Test func anyRateLimitValueYieldsSaneNumbers() async {
        let input = Generator { rng in
            (HostileInput.string(&rng, extra: Self.rateLimitExtra, maxParts: 10), HostileInput.string(&rng, extra: Self.rateLimitExtra, maxParts: 10))
        }
        await propertyCheck(count: HostileInput.scaled(3000), input: input) { limit, remaining in
            let parsed = RateLimitHeaders(limitHeader: limit, remainingHeader: remaining)
            #expect((0...RateLimitHeaders.maxCount).contains(parsed.limit ?? 0))
            #expect((0...RateLimitHeaders.maxCount).contains(parsed.remaining ?? 0))
            if let window = parsed.window { #expect(window > .zero && window <= RateLimitHeaders.maxWindow) }
            var headers = HTTPHeaders()
            headers.add(name: "RateLimit-Limit", value: limit)
            headers.add(name: "x-ratelimit-remaining", value: remaining)
            if let fromHeaders = RateLimitHeaders(headers: headers) {
                #expect(fromHeaders == parsed)
            } else {
                #expect(parsed.limit == nil && parsed.remaining == nil)
            }
        }
    }

    /// A number as `ratelimit-*` carries it: decimal digits, nothing else (RFC 8941 integers
    /// that are not negative), saturating at `RateLimitHeaders.maxCount`.
    static func expectedNumber(_ s: String) -> Int? {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(s).map { min($0, RateLimitHeaders.maxCount) } ?? RateLimitHeaders.maxCount
    }

    @Test func numbersAreReadOnlyWhenTheyAreNonNegativeIntegers() async {
        let input = Generator { rng in
            let sign = HostileInput.pick(["", "", "", "-", "+", "-0", " "], &rng)
            let value = sign + HostileInput.decimal(&rng)
            let window = HostileInput.pick(["", "-", "+"], &rng) + HostileInput.decimal(&rng)
            let form = HostileInput.int(&rng, 0...2)
            return (value, window, form)
        }
        await propertyCheck(count: HostileInput.scaled(3000), input: input) { (value: String, window: String, form: Int) in
            let header = switch form {
            case 0: "\(value);w=\(window)"
            case 1: "\(value) ; w=\(window);comment=\"x\""
            default: value
            }
            let parsed = RateLimitHeaders(limitHeader: header, remainingHeader: header)
            let number = Self.expectedNumber(value.trimmingCharacters(in: .whitespaces))
            #expect(parsed.limit == number, "\(header)")
            #expect(parsed.remaining == number, "\(header)")
            let seconds = form == 2 ? nil : Self.expectedNumber(window).flatMap { $0 > 0 ? min($0, 86_400) : nil }
            #expect(parsed.window == seconds.map { .seconds($0) }, "\(header)")
        }
    }

    @Test func dockerHubFormsParse() async {
        await propertyCheck(count: HostileInput.scaled(1000), input: Gen.int(in: 0...Int.max), Gen.int(in: 1...Int.max)) { n, w in
            let parsed = RateLimitHeaders(limitHeader: "\(n);w=\(w)", remainingHeader: "\(n / 2);w=\(w)")
            let count = { (k: Int) in min(k, RateLimitHeaders.maxCount) }
            let window = Duration.seconds(min(w, 86_400))
            #expect(parsed == RateLimitHeaders(limit: count(n), remaining: count(n / 2), window: window))
            let listed = RateLimitHeaders(limitHeader: "\(n), \(n);w=\(w)", remainingHeader: nil)
            #expect(listed == RateLimitHeaders(limit: count(n), remaining: nil, window: window))
        }
    }

    // MARK: Token service answers

    static let tokenExtra = [
        "{", "}", "\"token\":", "\"access_token\":", "\"expires_in\":", "\"issued_at\":", "\"abc\"", ",", "null", "-1",
        "9223372036854775807", "1e308", "\"2026-01-01T00:00:00Z\"", "\"9999-12-31T23:59:59.999Z\"", "\"0001-01-01T00:00:00Z\"",
    ]

    static func tokenBody(_ rng: inout HostileInput.RNG) -> String {
        if HostileInput.int(&rng, 0...1) == 0 { return HostileInput.string(&rng, extra: tokenExtra) }
        let expires = HostileInput.pick([
            "-9223372036854775808", "-1", "0", "59", "300", "86400", "9223372036854775807", "99999999999999999", "1e30", "-1e30",
            "300.5", "1e308", "\"300\"", "null", "true", "[]",
        ], &rng)
        var issued = HostileInput.pick(["", ",\"issued_at\":\"2026-01-01T00:00:00Z\"", ",\"issued_at\":\"9999-12-31T23:59:59.999Z\"",
                                        ",\"issued_at\":\"0001-01-01T00:00:00Z\"", ",\"issued_at\":\"garbage\""], &rng)
        if HostileInput.int(&rng, 0...2) == 0 {
            // Any text as issued_at (JSON-escaped): Foundation's date formatters trap on some.
            let text = HostileInput.string(&rng, extra: ["2026-01-01T00:00:00Z", "T", "Z", ":", "-", "ú", "\u{301}"], maxParts: 12)
            let data = try! JSONSerialization.data(withJSONObject: [text], options: [.fragmentsAllowed])
            issued = ",\"issued_at\":" + String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
        }
        return "{\"token\":\"t\",\"expires_in\":\(expires)\(issued)}"
    }

    @Test func anyTokenAnswerYieldsABoundedLifetimeOrAnError() async {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        await propertyCheck(count: HostileInput.scaled(2000), input: Generator { rng in Self.tokenBody(&rng) }) { body in
            do throws(UpstreamError) {
                let token = try UpstreamClient.decodeToken(ByteBuffer(string: body), now: now)
                #expect(!token.value.isEmpty)
                #expect(token.lifetime >= .seconds(1), "\(body)")
                #expect(token.lifetime <= UpstreamClient.maxTokenLifetime, "\(body)")
            } catch {
                if case .authentication = error {} else { Issue.record("unexpected \(error) for \(body)") }
            }
        }
    }
}
