import Foundation
import Testing

/// Inbound authentication under attack: floods of wrong passwords, user enumeration by
/// timing, and passwords bcrypt would truncate. The gateway runs with `auth:` and an
/// `admin_listen` whose `/metrics` shows how many bcrypt checks ran.
@Suite(.serialized)
struct AuthAbuseTests {
    static func basic(_ user: String, _ password: String) -> (String, String) {
        ("Authorization", "Basic " + Data("\(user):\(password)".utf8).base64EncodedString())
    }

    static func bcryptChecks(_ adminURL: String) async throws -> Double {
        let metrics = try await HTTPFetch.get("\(adminURL)/metrics")
        return PrometheusText(metrics.text).sum("mirrorgate_auth_bcrypt_checks_total")
    }

    /// Sends `count` requests with a wrong password for `user` over `threads` connections bound
    /// to `source`, and prints one `status retry-after` line per answer.
    static let flood = """
        import http.client, sys, threading, base64
        port, source, user, threads, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        lock = threading.Lock(); out = []
        def worker(n):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
            for i in range(count):
                auth = base64.b64encode(("%s:wrong-%d-%d" % (user, n, i)).encode()).decode()
                try:
                    conn.request("GET", "/v2/", headers={"Authorization": "Basic " + auth})
                    r = conn.getresponse(); r.read()
                    line = "%d %s" % (r.status, r.getheader("Retry-After") or "-")
                except Exception as e:
                    conn.close(); conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
                    line = "error %s" % type(e).__name__
                with lock: out.append(line)
        ts = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
        for t in ts: t.start()
        for t in ts: t.join()
        print("\\n".join(out))
        """

    /// A flood of wrong passwords for a real (cost 10) user, from one address, is refused with
    /// 429 after `auth.max_failures` failures instead of running bcrypt for every attempt;
    /// meanwhile an authorized client downloads a cached blob intact. Unknown and known users
    /// both cost a bcrypt check; passwords with a NUL byte or over 72 bytes are refused
    /// without one (both used to be accepted after the right prefix).
    @Test func wrongPasswordFloodsAreRefusedAndDoNotBlockCachedBlobs() async throws {
        let python = try #require(ManagedProcess.which("python3"))
        let skopeo = try Skopeo.locate()
        let long = String(repeating: "L", count: 72)
        let files = try TemporaryDirectory(prefix: "auth-abuse")
        let htpasswd = files.appending("htpasswd")
        try await HtpasswdFile.write(users: ["ci": "right-horse", "bob": "bob-pass", "dave": long], to: htpasswd, cost: 10)
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [2 << 20], layerFormat: .random)
        let adminPort = try FreePort.allocate()
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/app")
            var config = GatewayConfig.upstreams([upstream.url])
            config.extraYAML = """
                auth: {htpasswd: "\(htpasswd.path)", max_failures: 8, failure_window: 1m}
                admin_listen: 127.0.0.1:\(adminPort)
                """
            try await GatewayProcess.with(config) { gateway in
                let admin = "http://127.0.0.1:\(adminPort)"
                let ci = Self.basic("ci", "right-horse")
                let layer = fixture.layers[0]
                let blobURL = "\(gateway.url)/v2/library/app/blobs/\(layer.digest)"
                // Cached, and ci's pair remembered.
                #expect(try await HTTPFetch.get(blobURL, headers: [ci]).body == fixture.bytes(of: layer.digest))

                // Unknown and known users both run bcrypt.
                var checks = try await Self.bcryptChecks(admin)
                #expect(try await HTTPFetch.get("\(gateway.url)/v2/", headers: [Self.basic("bob", "nope")]).status == 401)
                #expect(try await Self.bcryptChecks(admin) == checks + 1)
                #expect(try await HTTPFetch.get("\(gateway.url)/v2/", headers: [Self.basic("nobody-here", "nope")]).status == 401)
                #expect(try await Self.bcryptChecks(admin) == checks + 2, "an unknown user was answered without a bcrypt check")

                // What bcrypt would truncate is refused, unchecked.
                checks = try await Self.bcryptChecks(admin)
                #expect(try await HTTPFetch.get("\(gateway.url)/v2/", headers: [Self.basic("bob", "bob-pass\u{0}anything")]).status == 401)
                #expect(try await HTTPFetch.get("\(gateway.url)/v2/", headers: [Self.basic("dave", long + "X")]).status == 401)
                #expect(try await Self.bcryptChecks(admin) == checks)
                #expect(try await HTTPFetch.get("\(gateway.url)/v2/", headers: [Self.basic("dave", long)]).status == 200)

                // The flood, from 127.0.0.5, while ci downloads the cached blob again.
                checks = try await Self.bcryptChecks(admin)
                async let flooded = ManagedProcess.run(
                    python, arguments: ["-c", Self.flood, String(gateway.port), "127.0.0.5", "bob", "40", "10"], timeout: .seconds(300))
                try await Task.sleep(for: .milliseconds(200))
                let download = try await HTTPFetch.get(blobURL, headers: [ci], timeout: .seconds(120))
                #expect(download.status == 200)
                #expect(download.body == fixture.bytes(of: layer.digest), "the cached blob was not served intact during the flood")
                let answers = try await flooded.stdoutText.split(separator: "\n").map(String.init)
                #expect(answers.count == 400)
                let refused = answers.filter { $0.hasPrefix("429 ") }
                #expect(refused.count > 300, "\(Dictionary(grouping: answers, by: { $0.prefix(3) }).mapValues(\.count))")
                #expect(refused.allSatisfy { !$0.hasSuffix(" -") }, "a 429 without Retry-After")
                #expect(answers.allSatisfy { $0.hasPrefix("401 ") || $0.hasPrefix("429 ") }, "\(Set(answers))")
                let flooding = try await Self.bcryptChecks(admin) - checks
                #expect(flooding < 100, "\(flooding) bcrypt checks for 400 wrong passwords from one address")

                // The flooding address is throttled even with the right password; others are not.
                let throttled = try await ManagedProcess.run(
                    try #require(ManagedProcess.which("curl")),
                    arguments: ["-sS", "--interface", "127.0.0.5", "-o", "/dev/null", "-w", "%{http_code}", "-u", "bob:bob-pass", "\(gateway.url)/v2/"])
                #expect(throttled.stdoutText == "429")
                #expect(try await HTTPFetch.get("\(gateway.url)/v2/", headers: [Self.basic("bob", "bob-pass")]).status == 200)
            }
        }
    }
}
