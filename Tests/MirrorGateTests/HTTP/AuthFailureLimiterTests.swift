@testable import MirrorGateHTTP
import NIOCore
import Testing

@Suite("AuthFailureLimiter")
struct AuthFailureLimiterTests {
    @Test func aSlidingWindowOfFailures() {
        var limiter = AuthFailureLimiter(limit: 2, window: .seconds(10))
        let t = ContinuousClock.now
        #expect(limiter.retryAfter(client: "a", now: t) == nil)
        limiter.recordFailure(client: "a", now: t)
        #expect(limiter.retryAfter(client: "a", now: t + .seconds(1)) == nil)
        limiter.recordFailure(client: "a", now: t + .seconds(4))
        #expect(limiter.retryAfter(client: "a", now: t + .seconds(5)) == .seconds(5))
        #expect(limiter.retryAfter(client: "b", now: t + .seconds(5)) == nil)
        // The first failure leaves the window at 10 s; one remains, so one more try is allowed.
        #expect(limiter.retryAfter(client: "a", now: t + .seconds(10)) == nil)
        limiter.recordFailure(client: "a", now: t + .seconds(10))
        #expect(limiter.retryAfter(client: "a", now: t + .seconds(11)) == .seconds(3))
        // At most `limit` instants are kept per client.
        for n in 0..<50 { limiter.recordFailure(client: "a", now: t + .seconds(12) + .milliseconds(n)) }
        #expect(limiter.failures["a"]?.count == 2)
    }

    @Test func memoryIsBoundedByMaxClients() {
        var limiter = AuthFailureLimiter(limit: 3, window: .seconds(10), maxClients: 4)
        let t = ContinuousClock.now
        for n in 0..<100 { limiter.recordFailure(client: "c\(n)", now: t + .milliseconds(n)) }
        #expect(limiter.failures.count <= 4)
        #expect(limiter.failures["c99"] != nil)
    }

    @Test func addressesAreKeyedByHostOrIPv6Slash64() throws {
        #expect(AuthFailureLimiter.clientKey(try SocketAddress(ipAddress: "10.1.2.3", port: 5)) == "10.1.2.3")
        #expect(AuthFailureLimiter.clientKey(try SocketAddress(ipAddress: "2001:db8:1:2:aaaa::1", port: 5)) == "2001:db8:1:2::/64")
        #expect(AuthFailureLimiter.clientKey(try SocketAddress(ipAddress: "2001:db8:1:2:bbbb::9", port: 6)) == "2001:db8:1:2::/64")
        #expect(AuthFailureLimiter.clientKey(try SocketAddress(ipAddress: "::ffff:10.1.2.3", port: 5)) == "10.1.2.3")
        #expect(AuthFailureLimiter.clientKey(nil) == "unknown")
    }
}
