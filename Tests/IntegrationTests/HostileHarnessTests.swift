import Foundation
import Testing

/// Self-tests of ``HostileUpstream`` (`Fixtures/hostile_upstream.py`): each mode answers as
/// documented, the configuration endpoint defines and routes modes, and the log holds every
/// request to both listeners with its headers.
@Suite(.serialized)
struct HostileHarnessTests {
    @Test func modesAnswerAsDocumentedAndEveryRequestIsLogged() async throws {
        try await HostileUpstream.with(config: #"{"routes": {"privorg": "realm"}}"#) { hostile in
            #expect(hostile.url.hasPrefix("http://127.0.0.1:") && hostile.internalURL.hasPrefix("http://127.0.0.5:"))
            let retry = try await HTTPFetch.get("\(hostile.url)/v2/retryafter/x/blobs/sha256:bb")
            #expect(retry.status == 429 && retry.header("Retry-After") == "9223372036854775807")

            let window = try await HTTPFetch.head("\(hostile.url)/v2/rlwindow/x/manifests/latest")
            #expect(window.status == 200 && window.header("ratelimit-remaining") == "0;w=9223372036854775807")
            #expect(window.header("Docker-Content-Digest")?.hasPrefix("sha256:") == true)

            // HTTPFetch follows redirects: the internal service answers.
            let followed = try await HTTPFetch.get("\(hostile.url)/v2/redir/x/tags/list")
            #expect(followed.status == 200 && followed.text == "INTERNAL-SECRET-/internal/tags/list")

            let challenge = try await HTTPFetch.get("\(hostile.url)/v2/privorg/app/manifests/v1")
            #expect(challenge.status == 401)
            #expect(challenge.header("WWW-Authenticate")
                == #"Bearer realm="\#(hostile.internalURL)/token",service="hostile",scope="repository:privorg/app:pull""#)
            let authorized = try await HTTPFetch.get(
                "\(hostile.url)/v2/privorg/app/manifests/v1", headers: [("Authorization", "Bearer abc")])
            #expect(authorized.status == 404)

            let html = try await HTTPFetch.get("\(hostile.url)/v2/html/x/manifests/latest")
            #expect(html.header("Content-Type") == "text/html" && html.text.hasPrefix("<script>"))
            #expect(html.header("Docker-Content-Digest") == ContentDescriptor.sha256(of: html.body))

            let unknown = try await HTTPFetch.get("\(hostile.url)/v2/anything/x/manifests/v1")
            #expect(unknown.status == 404)

            try await hostile.configure(#"""
                {"modes": {"redir2": {"behaviour": "redir", "location": "//127.0.0.3:9/{name}"},
                           "mismatch": {"behaviour": "serve", "body": "not it", "digest": "sha256:00"}},
                 "default": "mismatch"}
                """#)
            let head = try await HTTPFetch.request("\(hostile.url)/v2/redir2/a/b/tags/list", followRedirects: false)
            #expect(head.status == 302 && head.header("Location") == "//127.0.0.3:9/redir2/a/b")
            let mismatch = try await HTTPFetch.get("\(hostile.url)/v2/zzz/x/blobs/sha256:11")
            #expect(mismatch.text == "not it" && mismatch.header("Docker-Content-Digest") == "sha256:00")

            let log = hostile.requests()
            #expect(log.filter(\.isInternal).map(\.path) == ["/internal/tags/list"], "\(log)")
            let upstream = hostile.upstreamRequests()
            #expect(upstream.contains { $0.mode == "realm" && $0.authorization == "Bearer abc" }, "\(upstream)")
            #expect(upstream.contains { $0.mode == "mismatch" && $0.path == "/v2/zzz/x/blobs/sha256:11" }, "\(upstream)")
            try await hostile.clearRequests()
            #expect(hostile.requests().isEmpty)
        }
    }

    @Test func bodiesStallDripAndNeverEnd() async throws {
        try await HostileUpstream.with(config: #"{"modes": {"stall": {"hold": 5}, "drip": {"length": 3, "interval": 0.2}}}"#) { hostile in
            let dripped = try await HTTPFetch.get("\(hostile.url)/v2/drip/x/blobs/sha256:aa")
            #expect(dripped.status == 200 && dripped.body == Data(count: 3))
            await #expect(throws: (any Error).self) {
                _ = try await HTTPFetch.get("\(hostile.url)/v2/stall/x/blobs/sha256:aa", timeout: .seconds(1))
            }
            await #expect(throws: (any Error).self) {
                _ = try await HTTPFetch.request("\(hostile.url)/v2/endless/x/blobs/sha256:aa", maxBodyBytes: 4 << 20)
            }
            let huge = try await HTTPFetch.head("\(hostile.url)/v2/huge/x/blobs/sha256:aa")
            #expect(huge.header("Content-Length") == "100000000000000000")
            #expect(hostile.process.isRunning)
        }
    }
}
