import Foundation
import Testing

/// Every response carries `X-Content-Type-Options: nosniff` and a Content-Security-Policy:
/// the restrictive one (fetch nothing, run nothing, sandboxed) on everything but the status
/// page, whose own policy allows its inline styles and no scripts. The status page, the JSON
/// and the registry API share one origin, to which browsers replay Basic credentials, and an
/// upstream chooses the `Content-Type` of what it serves.
@Suite(.serialized)
struct ResponseHeaderTests {
    static let restrictive = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; sandbox"

    /// A hostile upstream: every manifest is an HTML page with a script, served as `text/html`.
    static let htmlUpstream = """
        import hashlib, sys
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        PAGE = b"<html><script>alert(document.domain)</script></html>"
        DIGEST = "sha256:" + hashlib.sha256(PAGE).hexdigest()
        class H(BaseHTTPRequestHandler):
            def answer(self, body):
                if self.path == "/v2/" or self.path == "/v2":
                    self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
                    if body: self.wfile.write(b"{}")
                    return
                if "/manifests/" in self.path:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Docker-Content-Digest", DIGEST)
                    self.send_header("Content-Length", str(len(PAGE))); self.end_headers()
                    if body: self.wfile.write(PAGE)
                    return
                self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()
            def do_GET(self): self.answer(True)
            def do_HEAD(self): self.answer(False)
            def log_message(self, *a): pass
        ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
        """

    static func expectHardened(_ response: HTTPFetch.Response, _ what: String, policy: String = restrictive, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(response.header("X-Content-Type-Options") == "nosniff", "\(what) (\(response.status)): no nosniff", sourceLocation: sourceLocation)
        #expect(response.header("Content-Security-Policy") == policy, "\(what) (\(response.status)): CSP \(response.header("Content-Security-Policy") ?? "none")", sourceLocation: sourceLocation)
    }

    @Test func everyResponseIsHardened() async throws {
        let python = try #require(ManagedProcess.which("python3"))
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [2048])
        let files = try TemporaryDirectory(prefix: "headers")
        let hostilePort = try FreePort.allocate()
        let hostile = try ManagedProcess(
            name: "html-upstream", executable: python, arguments: ["-c", Self.htmlUpstream, String(hostilePort)], stdoutLog: files.appending("hostile.log"))
        defer { hostile.kill(signal: SIGKILL) }
        try await hostile.waitForHTTP("http://127.0.0.1:\(hostilePort)/v2/")
        let adminPort = try FreePort.allocate()
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/app")
            var config = GatewayConfig.upstreams([upstream.url])
            config.setRegistry("evil.test", upstreams: [(name: "hostile", url: "http://127.0.0.1:\(hostilePort)")])
            try await GatewayProcess.with(config) { gateway in
                let g = gateway.url
                let accept = ("Accept", "application/vnd.oci.image.manifest.v1+json")
                for (path, method) in [
                    ("/v2/", "GET"), ("/v2/library/app/manifests/v1", "GET"), ("/v2/library/app/manifests/v1", "HEAD"),
                    ("/v2/library/app/blobs/\(fixture.layers[0].digest)", "GET"), ("/v2/library/nothing/manifests/v1", "GET"),
                    ("/v2/library/app/blobs/uploads/", "POST"), ("/nowhere", "GET"), ("/healthz", "GET"), ("/readyz", "GET"),
                    ("/metrics", "GET"), ("/_mirrorgate/status.json", "GET"), ("/_mirrorgate/upstreams", "GET"),
                    ("/v2/evil.test/x/manifests/latest", "GET"),
                ] {
                    let response = try await HTTPFetch.request("\(g)\(path)", method: method, headers: [accept])
                    Self.expectHardened(response, "\(method) \(path)")
                }
                let page = try await HTTPFetch.get("\(g)/_mirrorgate/")
                #expect(page.status == 200)
                Self.expectHardened(page, "the status page", policy: "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
                #expect(!page.text.contains("<script"))

                // In a real browser the page's own policy blocks none of its styles (Chromium
                // logs a console message for every violation at --v=1).
                let chromium = try #require(
                    ManagedProcess.which("chromium") ?? ManagedProcess.which("chromium-browser"), "chromium is not installed (make test installs it)")
                let profile = try TemporaryDirectory(prefix: "chromium-csp")
                let browser = try await ManagedProcess.run(chromium, arguments: [
                    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                    "--user-data-dir=\(profile.appending("profile").path)", "--enable-logging=stderr", "--v=1",
                    "--dump-dom", "\(g)/_mirrorgate/",
                ], timeout: .seconds(90))
                #expect(browser.status == 0, "\(browser.stderr.suffix(2000))")
                #expect(browser.stdoutText.contains("Registry"), "the page did not render")
                let violations = browser.stderr.split(separator: "\n").filter { $0.contains("Content Security Policy") }
                #expect(violations.isEmpty, "\(violations.joined(separator: "\n"))")
            }
            // The admin listener too.
            config.extraYAML = "admin_listen: 127.0.0.1:\(adminPort)\n"
            try await GatewayProcess.with(config) { _ in
                for path in ["/healthz", "/readyz", "/metrics", "/nowhere"] {
                    Self.expectHardened(try await HTTPFetch.get("http://127.0.0.1:\(adminPort)\(path)"), "admin \(path)")
                }
            }
        }
    }
}
