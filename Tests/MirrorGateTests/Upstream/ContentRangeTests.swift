import NIOHTTP1
import Testing

@testable import MirrorGateUpstream

/// `Content-Length` and `Content-Range` from upstreams: read only when they fit an `Int`
/// (security review, finding 2: no value from the network may trap).
@Suite("ContentRange")
struct ContentRangeTests {
    static func response(_ headers: HTTPHeaders) -> UpstreamResponse {
        let upstream = try! TokenCacheTests.upstream(registry: "docker.io", url: "https://r.example")
        return UpstreamResponse(upstream: upstream, status: 206, headers: headers, body: UpstreamClient.emptyBody())
    }

    @Test func validRanges() {
        #expect(ContentRange("bytes 100-199/1000") == ContentRange(first: 100, last: 199, complete: 1000))
        #expect(ContentRange("BYTES  0-0/1 ") == ContentRange(first: 0, last: 0, complete: 1))
        #expect(ContentRange("bytes 5-9/*") == ContentRange(first: 5, last: 9, complete: nil))
        #expect(ContentRange("bytes 0-9223372036854775806/9223372036854775807")?.complete == UInt64(Int.max))
    }

    @Test(arguments: [
        "bytes */1000", "bytes 200-100/1000", "bytes 0-1000/1000", "items 0-1/2", "bytes 0-/10", "bytes -5/10", "bytes +1-2/3",
        "bytes 0-1/+3", "bytes 0-9223372036854775807/*", "bytes 0-1/9223372036854775808", "bytes 0-1/18446744073709551616",
        "bytes 0-1", "", "bytes ", "bytes 1-2/3/4",
    ])
    func invalidRanges(_ header: String) {
        #expect(ContentRange(header) == nil)
    }

    @Test func contentLengthFitsAnInt() {
        #expect(Self.response(["content-length": "42"]).contentLength == 42)
        #expect(Self.response(["content-length": " 9223372036854775807 "]).contentLength == UInt64(Int.max))
        for bad in ["9223372036854775808", "18446744073709551615", "+5", "-0", "1e3", "", "0x10"] {
            #expect(Self.response(["content-length": bad]).contentLength == nil, "\(bad)")
        }
        #expect(Self.response(["content-range": "bytes 1-2/3"]).contentRange == ContentRange(first: 1, last: 2, complete: 3))
    }
}
