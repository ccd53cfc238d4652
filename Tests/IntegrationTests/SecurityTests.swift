import Foundation
import Testing

/// A gateway exposed to many clients: inbound htpasswd authentication, TLS with a certificate
/// reloaded on SIGHUP, and the limits that protect it from slow or greedy clients.
@Suite(.serialized)
struct SecurityTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    static func basic(_ user: String, _ password: String) -> (String, String) {
        ("Authorization", "Basic " + Data("\(user):\(password)".utf8).base64EncodedString())
    }

    /// Everything but the health endpoints needs valid Basic credentials; skopeo pulls with
    /// them; SIGHUP re-reads the file.
    @Test func htpasswdProtectsEverythingButHealth() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [40 << 10])
        let files = try TemporaryDirectory(prefix: "inbound-auth")
        let htpasswd = files.appending("htpasswd")
        try await HtpasswdFile.write(users: ["ci": "right-horse"], to: htpasswd)
        // What `htpasswd -B` writes, and what the gateway once refused with 401.
        #expect(try String(contentsOf: htpasswd, encoding: .utf8).hasPrefix("ci:$2y$05$"))
        let curl = try #require(ManagedProcess.which("curl"))
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/private-app")
            var config = GatewayConfig.upstreams([upstream.url])
            config.extraYAML = "auth: {htpasswd: \"\(htpasswd.path)\", realm: test-gateway}\n"
            try await GatewayProcess.with(config) { gateway in
                let anonymous = try await HTTPFetch.get("\(gateway.url)/v2/")
                #expect(anonymous.status == 401)
                #expect(anonymous.header("WWW-Authenticate")?.hasPrefix("Basic realm=\"test-gateway\"") == true)
                #expect(anonymous.text.contains("\"UNAUTHORIZED\""))
                #expect(try await HTTPFetch.get("\(gateway.url)/v2/", headers: [Self.basic("ci", "wrong")]).status == 401)
                #expect(try await HTTPFetch.get("\(gateway.url)/v2/", headers: [Self.basic("ci", "right-horse")]).status == 200)
                let curled = try await ManagedProcess.run(curl, arguments: ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-u", "ci:right-horse", "\(gateway.url)/v2/"])
                #expect(curled.stdoutText == "200", "curl -u with the right password: \(curled.stdoutText) \(curled.stderr)")
                #expect(try await HTTPFetch.get("\(gateway.url)/healthz").status == 200)
                #expect(try await HTTPFetch.get("\(gateway.url)/readyz").status == 200)
                #expect(try await HTTPFetch.get("\(gateway.url)/_mirrorgate/").status == 401)
                #expect(try await HTTPFetch.get("\(gateway.url)/_mirrorgate/status.json").status == 401)
                #expect(try await HTTPFetch.get("\(gateway.url)/metrics").status == 401)
                #expect(try await HTTPFetch.get("\(gateway.url)/metrics", headers: [Self.basic("ci", "right-horse")]).status == 200)

                await #expect(throws: (any Error).self) {
                    _ = try await skopeo.pull(from: gateway.hostPort, repository: "library/private-app", reference: "v1")
                }
                let pulled = try await skopeo.pull(
                    from: gateway.hostPort, repository: "library/private-app", reference: "v1", credentials: .init(user: "ci", password: "right-horse"))
                #expect(pulled.allDigests == fixture.allDigests)
                #expect(gateway.logText().contains("user=ci"))

                try await HtpasswdFile.write(users: ["deploy": "new-horse"], to: htpasswd)
                gateway.kill(signal: SIGHUP)
                try await Self.waitFor { gateway.logText().contains("htpasswd reloaded") }
                #expect(try await HTTPFetch.get("\(gateway.url)/v2/", headers: [Self.basic("deploy", "new-horse")]).status == 200)
                #expect(try await HTTPFetch.get("\(gateway.url)/v2/", headers: [Self.basic("ci", "right-horse")]).status == 401)
            }
        }
    }

    /// HTTPS with the configured certificate; after the files are replaced and SIGHUP sent,
    /// new connections get the new certificate while a download in progress completes intact.
    @Test func tlsCertificateReloadsOnSIGHUPWithoutDroppingConnections() async throws {
        let openssl = try #require(ManagedProcess.which("openssl"))
        let curl = try #require(ManagedProcess.which("curl"))
        let files = try TemporaryDirectory(prefix: "tls")
        for n in 1...2 {
            let made = try await ManagedProcess.run(openssl, arguments: [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                "-subj", "/CN=mirrorgate-test-\(n)", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", files.appending("key\(n).pem").path, "-out", files.appending("cert\(n).pem").path,
            ])
            #expect(made.status == 0, "\(made.stderr)")
        }
        let cert = files.appending("cert.pem"), key = files.appending("key.pem")
        try FileManager.default.copyItem(at: files.appending("cert1.pem"), to: cert)
        try FileManager.default.copyItem(at: files.appending("key1.pem"), to: key)

        let fixture = try ImageFixture.make(.ociImage, layerSizes: [8 << 20], layerFormat: .random)
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/tls-app")
            var config = GatewayConfig.upstreams([upstream.url])
            config.extraYAML = "tls: {cert: \"\(cert.path)\", key: \"\(key.path)\"}\n"
            try await GatewayProcess.with(config) { gateway in
                #expect(gateway.url.hasPrefix("https://"))
                func get(_ path: String, ca: String) async throws -> ManagedProcess.CommandResult {
                    try await ManagedProcess.run(curl, arguments: ["-sS", "-f", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", files.appending(ca).path, "\(gateway.url)\(path)"])
                }
                #expect(try await get("/v2/", ca: "cert1.pem").status == 0)
                #expect(try await get("/v2/", ca: "cert2.pem").status != 0, "a certificate it does not serve was accepted")
                // skopeo over HTTPS (verification off: the test CA is not in its trust store).
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/tls-app", reference: "v1")
                #expect(pulled.allDigests == fixture.allDigests)

                // A slow download (cached 8 MiB layer at 1 MiB/s) spanning the reload.
                let layer = fixture.layers[0]
                let out = files.appending("layer.bin")
                let download = try ManagedProcess(
                    name: "slow-curl", executable: curl,
                    arguments: ["-sS", "-f", "--limit-rate", "1M", "--cacert", files.appending("cert1.pem").path,
                                "-o", out.path, "\(gateway.url)/v2/library/tls-app/blobs/\(layer.digest)"],
                    stdoutLog: files.appending("curl.log"))
                try await Task.sleep(for: .milliseconds(700))

                try FileManager.default.removeItem(at: cert)
                try FileManager.default.removeItem(at: key)
                try FileManager.default.copyItem(at: files.appending("cert2.pem"), to: cert)
                try FileManager.default.copyItem(at: files.appending("key2.pem"), to: key)
                gateway.kill(signal: SIGHUP)
                try await Self.waitFor { gateway.logText().contains("TLS certificate reloaded") }
                #expect(download.isRunning, "the download finished before the reload; the test proves nothing")

                #expect(try await get("/v2/", ca: "cert2.pem").status == 0)
                #expect(try await get("/v2/", ca: "cert1.pem").status != 0, "new connections still get the old certificate")

                #expect(await download.waitForExit(timeout: .seconds(60)))
                #expect(download.exitStatus == 0, "\(download.logTail())")
                let bytes = try Data(contentsOf: out)
                #expect(bytes == fixture.bytes(of: layer.digest), "the download across the reload was cut or corrupted")
            }
        }
    }

    /// A client that trickles a request head is disconnected after `idle_timeout`; a client
    /// that stops reading a blob is disconnected after `send_timeout` (logged as aborted); an
    /// oversized head is refused; the gateway keeps serving others throughout.
    @Test func slowAndGreedyClientsAreCutOff() async throws {
        let python = try #require(ManagedProcess.which("python3"))
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [24 << 20], layerFormat: .random)
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/big")
            var config = GatewayConfig.upstreams([upstream.url])
            config.extraYAML = "limits: {idle_timeout: 1s, send_timeout: 1s, max_header_size: 8KiB, max_concurrent_fetches: 1}\n"
            try await GatewayProcess.with(config) { gateway in
                // max_concurrent_fetches: 1 still serves a whole image correctly.
                let pulled = try await skopeo.pull(from: gateway.hostPort, repository: "library/big", reference: "v1")
                #expect(pulled.allDigests == fixture.allDigests)
                let layer = fixture.layers[0]

                let script = """
                import socket, sys, time
                port = int(sys.argv[1]); mode = sys.argv[2]; path = sys.argv[3]
                s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", port)); s.settimeout(20)
                start = time.time()
                if mode == "trickle":
                    s.sendall(b"GET /v2/ HTTP/1.1\\r\\n")
                    try:
                        for _ in range(40):
                            s.sendall(b"X-Slow: 1\\r\\n"); time.sleep(0.25)
                            if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"": break
                    except (BlockingIOError,): pass
                    except OSError: pass
                    try:
                        while s.recv(65536): pass
                    except OSError: pass
                    print("closed-after %.1f" % (time.time() - start))
                elif mode == "stall":
                    s.sendall(("GET %s HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n" % path).encode())
                    time.sleep(4)
                    got = 0
                    try:
                        while True:
                            b = s.recv(1 << 20)
                            if not b: break
                            got += len(b)
                    except OSError: pass
                    print("received %d" % got)
                elif mode == "bighead":
                    s.sendall(b"GET /v2/ HTTP/1.1\\r\\nHost: x\\r\\nX-Big: " + b"a" * 20000 + b"\\r\\n\\r\\n")
                    try: print(s.recv(200).decode(errors="replace").split("\\r\\n")[0] or "closed")
                    except OSError as e: print("closed", e)
                """
                func client(_ mode: String, _ path: String = "/") async throws -> String {
                    let result = try await ManagedProcess.run(python, arguments: ["-c", script, String(gateway.port), mode, path], timeout: .seconds(60))
                    return String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                }

                let trickle = try await client("trickle")
                let seconds = try #require(Double(trickle.replacingOccurrences(of: "closed-after ", with: "")), "\(trickle)")
                #expect(seconds < 8, "a trickled request head held the connection for \(seconds) s")

                let stalled = try await client("stall", "/v2/library/big/blobs/\(layer.digest)")
                let received = try #require(Int(stalled.replacingOccurrences(of: "received ", with: "")), "\(stalled)")
                #expect(received < layer.size, "the stalled client was never cut off")
                try await Self.waitFor { gateway.logText().contains("aborted=") }

                let big = try await client("bighead")
                #expect(!big.hasPrefix("HTTP/1.1 200"), "an oversized request head was served: \(big)")

                #expect(try await HTTPFetch.get("\(gateway.url)/v2/").status == 200)
                let again = try await HTTPFetch.get("\(gateway.url)/v2/library/big/blobs/\(layer.digest)")
                #expect(again.body == fixture.bytes(of: layer.digest))
            }
        }
    }

    static func waitFor(timeout: Duration = .seconds(15), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { throw ManagedProcess.Failure("condition not met within \(timeout)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
