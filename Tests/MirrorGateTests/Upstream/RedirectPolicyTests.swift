import MirrorGateConfig
import MirrorGateUpstream
import Testing

@Suite("RedirectPolicy")
struct RedirectPolicyTests {
    static let hub = RedirectPolicy(upstream: UpstreamURL(scheme: "https", host: "registry-1.docker.io", port: nil, basePath: ""), maxHops: 5)
    static let local = RedirectPolicy(upstream: UpstreamURL(scheme: "http", host: "127.0.0.1", port: 5000, basePath: ""), maxHops: 5)
    static let blob = "https://registry-1.docker.io/v2/library/alpine/blobs/sha256:abc"

    /// The reason a redirect is refused, or nil when it is followed.
    func refusal(_ policy: RedirectPolicy, from current: String, location: String?, hops: Int = 0, status: Int = 307) -> String? {
        do {
            _ = try policy.next(after: current, status: status, location: location, hopsSoFar: hops)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func credentialsStayOnTheUpstreamsOrigin() {
        #expect(Self.hub.carriesCredentials(Self.blob))
        #expect(Self.hub.carriesCredentials("HTTPS://Registry-1.Docker.IO/v2/"))
        // The scheme's default port, written out, is the same origin.
        #expect(Self.hub.carriesCredentials("https://registry-1.docker.io:443/v2/"))
        #expect(Self.local.carriesCredentials("http://127.0.0.1:5000/v2/x/blobs/sha256:1"))
    }

    @Test(arguments: [
        "https://production.cloudflare.docker.com/registry-v2/docker/registry/v2/blobs/sha256/ab/abc/data",
        "https://registry-1.docker.io.evil.example/v2/",  // a longer host with the upstream's as prefix
        "https://registry-1.docker.io:8443/v2/",  // same host, other port
        "http://registry-1.docker.io/v2/",  // same host, other scheme
        "https://docker.io/v2/",  // same registrable domain is not the same origin
        "https://registry-1.docker.io@evil.example/v2/",  // user info that looks like the host
        "ftp://registry-1.docker.io/v2/",
        "not a url",
    ])
    func credentialsNeverGoElsewhere(_ url: String) {
        #expect(!Self.hub.carriesCredentials(url))
    }

    @Test func sameHostOnAnotherPortOrSchemeGetsNoCredentials() {
        #expect(!Self.local.carriesCredentials("http://127.0.0.1:5001/v2/"))
        #expect(!Self.local.carriesCredentials("https://127.0.0.1:5000/v2/"))
        #expect(!Self.local.carriesCredentials("http://127.0.0.2:5000/v2/"))
        #expect(!Self.local.carriesCredentials("http://127.0.0.1/v2/"))  // port 80
        #expect(!Self.local.carriesCredentials("http://localhost:5000/v2/"))
    }

    @Test func ipv6Origins() {
        let policy = RedirectPolicy(upstream: UpstreamURL(scheme: "http", host: "::1", port: 5000, basePath: ""), maxHops: 5)
        #expect(policy.carriesCredentials("http://[::1]:5000/v2/"))
        #expect(!policy.carriesCredentials("http://[::2]:5000/v2/"))
    }

    @Test func locationsResolveAgainstTheCurrentURL() throws {
        #expect(try Self.hub.next(after: Self.blob, status: 307, location: "/v2/elsewhere", hopsSoFar: 0)
            == "https://registry-1.docker.io/v2/elsewhere")
        #expect(try Self.hub.next(after: Self.blob, status: 302, location: "//cdn.example/data?sig=1", hopsSoFar: 0)
            == "https://cdn.example/data?sig=1")
        #expect(try Self.hub.next(after: Self.blob, status: 301, location: "https://cdn.example/x", hopsSoFar: 4)
            == "https://cdn.example/x")
        // A relative Location after a hop to a CDN stays on the CDN, without credentials.
        let onCDN = try Self.hub.next(after: "https://cdn.example/a/b", status: 307, location: "c", hopsSoFar: 1)
        #expect(onCDN == "https://cdn.example/a/c")
        #expect(!Self.hub.carriesCredentials(onCDN))
    }

    @Test func atMostMaxHops() {
        #expect(refusal(Self.hub, from: Self.blob, location: "https://cdn.example/x", hops: 4) == nil)
        #expect(refusal(Self.hub, from: Self.blob, location: "https://cdn.example/x", hops: 5) == "redirect refused: more than 5 redirects")
        let none = RedirectPolicy(upstream: UpstreamURL(scheme: "https", host: "h", port: nil, basePath: ""), maxHops: 0)
        #expect(refusal(none, from: "https://h/v2/", location: "/v2/x") == "redirect refused: more than 0 redirects")
    }

    @Test func neverFromHTTPSToHTTP() {
        #expect(refusal(Self.hub, from: Self.blob, location: "http://cdn.example/x") == "redirect refused: refusing to follow a redirect from https to http")
        #expect(refusal(Self.hub, from: Self.blob, location: "HTTP://registry-1.docker.io/v2/") != nil)
        // Also at a later hop: https CDN → http.
        #expect(refusal(Self.hub, from: "https://cdn.example/x", location: "http://cdn.example/y", hops: 2) != nil)
        // Upgrades and plain http chains are followed.
        #expect(refusal(Self.local, from: "http://127.0.0.1:5000/v2/", location: "https://cdn.example/x") == nil)
        #expect(refusal(Self.local, from: "http://127.0.0.1:5000/v2/", location: "http://127.0.0.2:6000/x") == nil)
    }

    @Test func unusableLocations() {
        #expect(refusal(Self.hub, from: Self.blob, location: nil) == "redirect refused: 307 without Location")
        #expect(refusal(Self.hub, from: Self.blob, location: "file:///etc/passwd") == "redirect refused: unusable Location")
        #expect(refusal(Self.hub, from: Self.blob, location: "javascript:alert(1)") == "redirect refused: unusable Location")
        #expect(refusal(Self.hub, from: Self.blob, location: "https:///no-host") == "redirect refused: unusable Location")
    }

    @Test func followedStatuses() {
        #expect(RedirectPolicy.statuses == [301, 302, 303, 307, 308])
    }
}
