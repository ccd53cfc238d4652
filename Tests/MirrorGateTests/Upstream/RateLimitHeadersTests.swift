import Foundation
import NIOHTTP1
import Testing

@testable import MirrorGateUpstream

@Suite("RateLimitHeaders")
struct RateLimitHeadersTests {
    @Test func parsesDockerHubHeaders() throws {
        let headers: HTTPHeaders = ["ratelimit-limit": "100;w=21600", "ratelimit-remaining": "20;w=21600", "docker-ratelimit-source": "1.2.3.4"]
        let parsed = try #require(RateLimitHeaders(headers: headers))
        #expect(parsed == RateLimitHeaders(limit: 100, remaining: 20, window: .seconds(21600)))
    }

    @Test func parsesTheXSpellingCaseInsensitively() throws {
        let headers: HTTPHeaders = ["X-RateLimit-Limit": "200;w=3600", "X-RateLimit-Remaining": "0;w=3600"]
        #expect(RateLimitHeaders(headers: headers) == RateLimitHeaders(limit: 200, remaining: 0, window: .seconds(3600)))
    }

    @Test func toleratesListsSpacesAndMissingWindow() {
        #expect(RateLimitHeaders(limitHeader: "100, 100;w=21600", remainingHeader: " 7 ") == RateLimitHeaders(limit: 100, remaining: 7, window: .seconds(21600)))
        #expect(RateLimitHeaders(limitHeader: nil, remainingHeader: "3;w=60;comment=\"x\"") == RateLimitHeaders(limit: nil, remaining: 3, window: .seconds(60)))
    }

    @Test func absentOrGarbageMeansNotLimited() {
        #expect(RateLimitHeaders(headers: [:]) == nil)
        #expect(RateLimitHeaders(headers: ["ratelimit-remaining": "lots"]) == nil)
        #expect(RateLimitHeaders(limitHeader: "-5;w=-1", remainingHeader: nil) == RateLimitHeaders(limit: nil, remaining: nil, window: nil))
    }

    @Test func tokenLifetimeCountsFromIssuedAtAndIsAtLeastSixtySeconds() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let issued = ISO8601DateFormatter().string(from: now.addingTimeInterval(-100))
        let body = "{\"token\":\"abc\",\"expires_in\":300,\"issued_at\":\"\(issued)\"}"
        let token = try UpstreamClient.decodeToken(.init(string: body), now: now)
        #expect(token.value == "abc")
        #expect(token.lifetime == .seconds(200))
        let short = try UpstreamClient.decodeToken(.init(string: "{\"access_token\":\"x\",\"expires_in\":5}"), now: now)
        #expect(short.value == "x")
        #expect(short.lifetime == .seconds(60))
        #expect(throws: UpstreamError.self) { try UpstreamClient.decodeToken(.init(string: "{\"expires_in\":5}"), now: now) }
    }

    /// Found by the property suite: `expires_in` near `Int.max` trapped converting the lifetime
    /// to milliseconds, so a token service could crash the gateway.
    @Test(arguments: ["9223372036854775807", "99999999999999999", "9223372036854776"])
    func hugeExpiresInIsCappedNotATrap(_ expiresIn: String) throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let token = try UpstreamClient.decodeToken(.init(string: "{\"token\":\"t\",\"expires_in\":\(expiresIn)}"), now: now)
        #expect(token.lifetime == UpstreamClient.maxTokenLifetime)
        let issued = try UpstreamClient.decodeToken(
            .init(string: "{\"token\":\"t\",\"expires_in\":\(expiresIn),\"issued_at\":\"9999-12-31T23:59:59Z\"}"), now: now)
        #expect(issued.lifetime == UpstreamClient.maxTokenLifetime)
    }

    /// Found by the property suite: `Int(_:)` let `+5` and `-0` through, and a tab before a
    /// number hid it. The values are RFC 8941 integers: digits only.
    @Test func numbersAreDigitsOnly() {
        #expect(RateLimitHeaders(limitHeader: "+100;w=+60", remainingHeader: "-0") == RateLimitHeaders(limit: nil, remaining: nil, window: nil))
        #expect(RateLimitHeaders(limitHeader: "\t100;\tw=60\t", remainingHeader: " 5 ") == RateLimitHeaders(limit: 100, remaining: 5, window: .seconds(60)))
    }

    /// Security review, finding 2: `w=9223372036854775807` became a block until the year
    /// 292 billion, which crashed the gateway where it was turned back into seconds. Counts
    /// and windows saturate instead: however many digits, at most a day and `maxCount`.
    @Test(arguments: ["9223372036854775807", "9223372036854775808", "99999999999999999999", "86401", String(repeating: "9", count: 400)])
    func hugeNumbersSaturate(_ digits: String) {
        let parsed = RateLimitHeaders(limitHeader: "\(digits);w=\(digits)", remainingHeader: "0;w=\(digits)")
        #expect(parsed.window == RateLimitHeaders.maxWindow)
        #expect(parsed.window == .seconds(86_400))
        #expect(parsed.remaining == 0)
        #expect(parsed.limit == min(Int(digits) ?? .max, RateLimitHeaders.maxCount))
        #expect(RateLimitHeaders(limitHeader: "1000000001", remainingHeader: "000000000000000000000042").remaining == 42)
        #expect(RateLimitHeaders(limitHeader: "1000000001", remainingHeader: nil).limit == RateLimitHeaders.maxCount)
    }
}
