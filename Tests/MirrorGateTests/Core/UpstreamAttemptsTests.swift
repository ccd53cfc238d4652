import MirrorGateConfig
@testable import MirrorGateCore
import MirrorGateUpstream
import RegistryModel
import Testing

@Suite("UpstreamAttempts")
struct UpstreamAttemptsTests {
    static func upstream(_ name: String) -> Upstream {
        Upstream(
            registry: "docker.io",
            config: UpstreamConfig(name: name, url: UpstreamURL(scheme: "https", host: "\(name).example.com", port: nil, basePath: "")))
    }

    static let a = upstream("a")
    static let b = upstream("b")
    static let c = upstream("c")
    static let notFound = RegistryError(.manifestUnknown, "manifest unknown to every upstream")

    @Test func emptyIs503() {
        let attempts = UpstreamAttempts()
        #expect(attempts.isEmpty)
        #expect(attempts.description == "")
        let error = attempts.clientError(notFound: Self.notFound)
        #expect(error.code == .manifestUnknown)
        #expect(error.status == 503)
    }

    @Test func allNotFoundIsTheGivenErrorWithDetail() {
        var attempts = UpstreamAttempts()
        attempts.notFound(Self.a, status: 404)
        attempts.notFound(Self.b, status: 404)
        let error = attempts.clientError(notFound: Self.notFound)
        #expect(error.code == .manifestUnknown)
        #expect(error.status == 404)
        #expect(error.message == Self.notFound.message)
        #expect(error.detail == "a: not found (404); b: not found (404)")
        #expect(!attempts.isEmpty)
    }

    @Test func allNotFoundKeepsAGivenBlobError() {
        var attempts = UpstreamAttempts()
        attempts.notFound(Self.a, status: 404)
        let given = RegistryError(.blobUnknown, "blob unknown")
        let error = attempts.clientError(notFound: given)
        #expect(error.code == .blobUnknown)
        #expect(error.status == 404)
        #expect(error.message == "blob unknown")
        #expect(error.detail == "a: not found (404)")
    }

    @Test(arguments: [[401], [403], [404, 401], [403, 404, 404]])
    func deniedCountsAsNameUnknown(_ statuses: [Int]) {
        // Registries answer 401/403 for repositories that do not exist (Docker Hub does).
        var attempts = UpstreamAttempts()
        for (index, status) in statuses.enumerated() {
            attempts.notFound(Self.upstream("u\(index)"), status: status)
        }
        let error = attempts.clientError(notFound: Self.notFound)
        #expect(error.code == .nameUnknown)
        #expect(error.status == 404)
        #expect(error.detail == statuses.enumerated().map { "u\($0.offset): not found (\($0.element))" }.joined(separator: "; "))
    }

    @Test func allSkippedIs503() {
        var attempts = UpstreamAttempts()
        attempts.skipped(Self.a, .circuitOpen)
        attempts.skipped(Self.b, .circuitOpen)
        #expect(!attempts.isEmpty)
        #expect(attempts.description == "a: skipped (circuit open); b: skipped (circuit open)")
        let error = attempts.clientError(notFound: Self.notFound)
        #expect(error.code == .manifestUnknown)
        #expect(error.status == 503)
        #expect(error.message.contains("a: skipped (circuit open)"))
    }

    @Test func skippedAndTimeoutIs504() {
        var attempts = UpstreamAttempts()
        attempts.skipped(Self.a, .circuitOpen)
        attempts.failed(Self.b, .init(.timeout, "timed out"))
        #expect(attempts.clientError(notFound: Self.notFound).status == 504)
    }

    @Test func skippedAndRateLimitedIs429() {
        var attempts = UpstreamAttempts()
        attempts.skipped(Self.a, .circuitOpen)
        attempts.failed(Self.b, .init(.status, "HTTP 429", status: 429))
        #expect(attempts.clientError(notFound: Self.notFound).code == .tooManyRequests)
    }

    @Test func skippedAndFailedIs502() {
        var attempts = UpstreamAttempts()
        attempts.skipped(Self.a, .circuitOpen)
        attempts.failed(Self.b, .init(.connection, "connection refused"))
        let error = attempts.clientError(notFound: Self.notFound)
        #expect(error.status == 502)
        #expect(error.code == .manifestUnknown)
    }

    @Test func allTimeoutsIs504() {
        var attempts = UpstreamAttempts()
        attempts.failed(Self.a, .init(.timeout, "timed out after 2s"))
        attempts.failed(Self.b, .init(.timeout, "timed out after 2s"))
        let error = attempts.clientError(notFound: Self.notFound)
        #expect(error.status == 504)
        #expect(error.code == .manifestUnknown)
        #expect(error.message.contains("a: timed out after 2s"))
        #expect(error.message.contains("b: timed out after 2s"))
    }

    @Test func allRateLimitedIs429() {
        var attempts = UpstreamAttempts()
        attempts.failed(Self.a, .init(.status, "HTTP 429", status: 429))
        attempts.failed(Self.b, .init(.status, "budget exhausted", status: 429))
        let error = attempts.clientError(notFound: Self.notFound)
        #expect(error.code == .tooManyRequests)
        #expect(error.status == 429)
        #expect(error.envelope.contains("\"TOOMANYREQUESTS\""))
    }

    @Test func mixedFailuresAre502() {
        var attempts = UpstreamAttempts()
        attempts.failed(Self.a, .init(.timeout, "timed out"))
        attempts.failed(Self.b, .init(.status, "HTTP 429", status: 429))
        attempts.failed(Self.c, .init(.connection, "connection refused"))
        let error = attempts.clientError(notFound: Self.notFound)
        #expect(error.code == .manifestUnknown)
        #expect(error.status == 502)
        #expect(error.message.contains("a: timed out; b: HTTP 429; c: connection refused"))
    }

    @Test func otherFailuresAre502() {
        var attempts = UpstreamAttempts()
        attempts.failed(Self.a, .init(.status, "HTTP 500", status: 500))
        #expect(attempts.clientError(notFound: Self.notFound).status == 502)

        var attempts2 = UpstreamAttempts()
        attempts2.failed(Self.a, .init(.status, "HTTP 429", status: 429))
        attempts2.failed(Self.b, .init(.status, "HTTP 503", status: 503))
        #expect(attempts2.clientError(notFound: Self.notFound).status == 502)
    }

    @Test func notFoundMixedWithRateLimitIs429() {
        // Content may exist on the limited upstream: the failures decide, not the "not found".
        var attempts = UpstreamAttempts()
        attempts.notFound(Self.a, status: 404)
        attempts.failed(Self.b, .init(.status, "HTTP 429", status: 429))
        let error = attempts.clientError(notFound: Self.notFound)
        #expect(error.code == .tooManyRequests)
        #expect(error.message.contains("a: not found (404); b: HTTP 429"))
    }

    @Test func notFoundMixedWithFailureIsNotNotFound() {
        var attempts = UpstreamAttempts()
        attempts.notFound(Self.a, status: 404)
        attempts.failed(Self.b, .init(.connection, "connection refused"))
        let error = attempts.clientError(notFound: Self.notFound)
        #expect(error.status == 502)
        #expect(error.code == .manifestUnknown)
    }

    @Test func entriesAndDescription() {
        var attempts = UpstreamAttempts()
        attempts.notFound(Self.a, status: 404)
        attempts.failed(Self.b, .init(.badResponse, "bad response: truncated", status: 200))
        #expect(attempts.entries.map(\.upstream) == ["a", "b"])
        #expect(attempts.description == "a: not found (404); b: bad response: truncated")
    }
}

/// Regression tests for bugs found in review (each case names what it once got wrong).
@Suite("UpstreamAttempts regressions")
struct UpstreamAttemptsRegressionTests {
    /// Was a bug: when the entries are only `.skipped` and `.notFound`, `failures` is empty and
    /// `failures.allSatisfy { $0.0 }` is vacuously true, so the client is told 504 UNAVAILABLE
    /// "no upstream answered in time" although no upstream was even slow. (An upstream that may
    /// hold the content was not asked, so 503 UNAVAILABLE is the natural answer.)
    @Test(arguments: [[404], [404, 401], [403]])
    func skippedAndNotFoundIsNotATimeout(_ statuses: [Int]) {
        var attempts = UpstreamAttempts()
        attempts.skipped(UpstreamAttemptsTests.a, .circuitOpen)
        for (index, status) in statuses.enumerated() {
            attempts.notFound(UpstreamAttemptsTests.upstream("u\(index)"), status: status)
        }
        let error = attempts.clientError(notFound: UpstreamAttemptsTests.notFound)
        #expect(error.status != 504, "\(error)")
        #expect(!error.message.contains("in time"), "\(error)")
    }
}
