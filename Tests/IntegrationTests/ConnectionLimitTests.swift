import Foundation
import Testing

/// Clients that hold connections: trickled request bodies (which Hummingbird's idle timer
/// does not end), and more connections than the process has descriptors for.
@Suite(.serialized)
struct ConnectionLimitTests {
    /// `mirrorgate check` prints `limits.max_connections` and what the open-file limit makes of it.
    @Test func checkPrintsTheConnectionCap() async throws {
        let directory = try TemporaryDirectory(prefix: "check-connections")
        let binary = try GatewayProcess.locateBinary().path
        let prlimit = try #require(ManagedProcess.which("prlimit"))
        func check(maxConnections: Int) async throws -> String {
            let file = directory.appending("gateway-\(maxConnections).yaml")
            var config = GatewayConfig.upstreams(["http://127.0.0.3:1"])
            config.extraYAML = "limits: {max_connections: \(maxConnections), max_concurrent_fetches: 4}\n"
            try config.render().write(to: file, atomically: true, encoding: .utf8)
            let result = try await ManagedProcess.run(prlimit, arguments: ["--nofile=128:384", "--", binary, "check", "--config", file.path])
            #expect(result.succeeded, "\(result.stderr)")
            return result.stdoutText
        }
        let roomy = try await check(maxConnections: 100)
        #expect(roomy.contains("4 concurrent fetches, 100 connections"), "\(roomy)")
        #expect(roomy.contains("connections: at most 100 at once (the open-file limit here, 384, affords them)"), "\(roomy)")
        let tight = try await check(maxConnections: 1000)
        #expect(tight.contains("limits.max_connections 1000 would be lowered to 122 here: the open-file limit is 384"), "\(tight)")
    }

    /// One connection per (method, path): a head announcing a 100 MB body, then one byte every
    /// 0.5 s; prints `closed-after SECONDS STATUS-LINE` or `open-after SECONDS STATUS-LINE`.
    static let trickle = """
        import socket, sys, time
        port, method, path, limit = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
        s = socket.create_connection(("127.0.0.1", port)); s.settimeout(0.5)
        s.sendall(("%s %s HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 100000000\\r\\n\\r\\n" % (method, path)).encode())
        start = time.time(); got = b""; closed = False
        while not closed and time.time() - start < limit:
            try:
                s.sendall(b"a")
            except OSError:
                closed = True; break
            t = time.time()
            while time.time() - t < 0.5:
                try:
                    b = s.recv(65536)
                    if not b: closed = True; break
                    got += b
                except socket.timeout: pass
                except OSError: closed = True; break
        print("%s %.1f %s" % ("closed-after" if closed else "open-after", time.time() - start, got.split(b"\\r\\n")[0].decode()))
        """

    /// A request body that trickles in is cut off `idle_timeout` after its head, whatever the
    /// method and answer (it used to restart the idle timer with every byte and live on).
    @Test(arguments: [
        ("GET", "/healthz", "HTTP/1.1 200 OK"),
        ("HEAD", "/healthz", "HTTP/1.1 200 OK"),
        ("PUT", "/v2/library/app/blobs/uploads/", "HTTP/1.1 401 Unauthorized"),
        ("GET", "/v2/", "HTTP/1.1 401 Unauthorized"),
    ])
    func trickledRequestBodiesAreCutOff(_ method: String, _ path: String, _ answer: String) async throws {
        let python = try #require(ManagedProcess.which("python3"))
        let files = try TemporaryDirectory(prefix: "trickle")
        let htpasswd = files.appending("htpasswd")
        try await HtpasswdFile.write(users: ["ci": "pw"], to: htpasswd)
        var config = GatewayConfig.upstreams(["http://127.0.0.3:1"])
        config.extraYAML = """
            auth: {htpasswd: "\(htpasswd.path)"}
            limits: {idle_timeout: 2s}
            """
        try await GatewayProcess.with(config) { gateway in
            let result = try await ManagedProcess.run(python, arguments: ["-c", Self.trickle, String(gateway.port), method, path, "15"], timeout: .seconds(60))
            let words = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ", maxSplits: 2).map(String.init)
            try #require(words.count == 3, "\(result.stdoutText) \(result.stderr)")
            #expect(words[0] == "closed-after", "\(method) \(path) with a trickled body was still open after \(words[1]) s")
            #expect((Double(words[1]) ?? 99) < 8, "closed only after \(words[1]) s with idle_timeout 2s")
            #expect(words[2] == answer)
        }
    }

    /// Opens `count` connections (each a `GET /healthz` with a trickled body), keeps trickling
    /// into those still open for `seconds`, then prints how many it opened and how many the
    /// gateway closed.
    static let holder = """
        import resource, socket, sys, time
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
        socks = []; failed = 0
        for _ in range(count):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=3)
                s.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 100000000\\r\\n\\r\\n")
                s.setblocking(False); socks.append(s)
            except OSError:
                failed += 1
        print("opened %d failed %d" % (len(socks), failed), flush=True)
        end = time.time() + seconds; closed = 0
        while time.time() < end:
            for s in list(socks):
                try:
                    s.send(b"a")
                except BlockingIOError:
                    pass
                except OSError:
                    socks.remove(s); closed += 1
            time.sleep(1)
        print("closed-by-gateway %d" % closed, flush=True)
        """

    /// Under a 128 (soft) / 384 (hard) open-file limit, 500 connections that trickle request
    /// bodies: the gateway raises its soft limit, caps connections below what the descriptors
    /// afford (closing the rest at once), cuts the trickling ones off, and `/healthz` answers
    /// while the attack still runs. Before, the gateway ran out of descriptors, spun on
    /// accept(2), never shed a connection, and libdispatch could trap (SIGILL).
    @Test func descriptorExhaustionIsSurvived() async throws {
        let python = try #require(ManagedProcess.which("python3"))
        let files = try TemporaryDirectory(prefix: "fd-exhaustion")
        var config = GatewayConfig.upstreams(["http://127.0.0.3:1"])
        config.extraYAML = "limits: {idle_timeout: 2s, max_concurrent_fetches: 4}\n"
        try await GatewayProcess.with(config, wrapper: ["prlimit", "--nofile=128:384", "--"]) { gateway in
            let holder = try ManagedProcess(
                name: "holder", executable: python, arguments: ["-c", Self.holder, String(gateway.port), "500", "12"],
                stdoutLog: files.appending("holder.log"))
            defer { holder.kill(signal: SIGKILL) }
            try await SecurityTests.waitFor(timeout: .seconds(30)) { holder.stdoutText().contains("opened ") }

            var answeredDuringAttack = false
            let deadline = ContinuousClock.now + .seconds(12)
            while ContinuousClock.now < deadline, holder.isRunning {
                if let health = try? await HTTPFetch.get("\(gateway.url)/healthz", timeout: .seconds(1)), health.status == 200 {
                    answeredDuringAttack = holder.isRunning
                    break
                }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(answeredDuringAttack, "/healthz did not answer while the connections were held\n\(holder.stdoutText())")
            #expect(await holder.waitForExit(timeout: .seconds(60)))
            #expect(holder.stdoutText().contains("opened 500"), "\(holder.stdoutText())")
            #expect(gateway.isRunning, "the gateway died\n\(gateway.logTail())")
            #expect(try await HTTPFetch.get("\(gateway.url)/healthz").status == 200)
            let log = gateway.logText()
            #expect(log.contains("soft=384") && log.contains("soft_before=128"), "the soft limit was not raised\n\(gateway.logTail())")
            #expect(log.contains("limits.max_connections lowered"))
            #expect(log.contains("connections refused: limits.max_connections reached"))
        }
    }
}
