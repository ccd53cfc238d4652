import AsyncHTTPClient
import NIOCore
import Testing

@testable import MirrorGateUpstream

/// Transport errors reach clients in error answers, so their messages name no URL, host,
/// address or port, and quote no header (security review, finding 14).
@Suite("UpstreamError")
struct UpstreamErrorTests {
    struct Opaque: Error, CustomStringConvertible {
        var description: String
    }

    @Test func clientErrorsQuoteNoValues() {
        let header = UpstreamClient.classify(HTTPClientError.invalidHeaderFieldValues(["Bearer s3cret\r\nX: y"]))
        #expect(!header.description.contains("s3cret"))
        #expect(header.description == "connection failed: invalid header field values")
        #expect(UpstreamClient.classify(HTTPClientError.readTimeout).description == "timed out: read timeout")
        #expect(UpstreamClient.classify(HTTPClientError.unsupportedScheme("gopher")).description == "connection failed: unsupported scheme")
        #expect(UpstreamClient.classify(IOError(errnoCode: 111, reason: "connect to 10.0.0.7:5000")).description == "connection failed: connection refused")
    }

    @Test(arguments: [
        "failed to reach http://mallory:hunter2@10.0.0.7:5000/v2/x?sig=1",
        "Connection errors: SingleConnectionFailure(target: [IPv4]internal.corp/10.0.0.7:5000, error: refused)",
        "connect to [fd00::7]:5000 failed", "redirected to //internal.corp:8080/x", "user mallory:hunter2@internal.corp",
        "internal.corp:5000 did not answer",
    ])
    func unknownErrorsLoseTheirLocations(_ text: String) {
        let message = UpstreamClient.classify(Opaque(description: text)).description
        #expect(message == "connection failed: Opaque", "\(message)")
    }

    @Test func plainWordsStay() {
        #expect(UpstreamClient.classify(Opaque(description: "connection reset by peer")).description == "connection failed: connection reset by peer")
        #expect(UpstreamClient.classify(Opaque(description: "")).description == "connection failed: Opaque")
    }
}
