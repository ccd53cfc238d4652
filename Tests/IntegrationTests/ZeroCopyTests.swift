import Crypto
import Foundation
import Testing

/// Cached blobs on a plain-HTTP listener go out with `sendfile` (the request log says
/// `sent_with=sendfile`), and keep what the buffered path guarantees: the right bytes for whole
/// blobs and ranges, `send_timeout` for clients that stop reading (and none for one that reads
/// slowly but steadily), the bytes in the request log, the eviction lease until the last byte,
/// flat memory whatever the number of slow clients.
/// A TLS listener streams buffers, as before.
@Suite(.serialized)
struct ZeroCopyTests {
    let skopeo: Skopeo

    init() throws {
        skopeo = try Skopeo.locate()
    }

    static let MiB = 1 << 20

    static func sha256(_ data: Data) -> String {
        "sha256:" + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// The request log line of the request with this `X-Request-ID`, once it is written.
    static func requestLine(_ gateway: GatewayProcess, id: String) async -> String? {
        var found: String?
        _ = await eventually(timeout: .seconds(10), interval: .milliseconds(100)) {
            found = gateway.logText().split(separator: "\n").last { $0.contains("request_id=\(id) ") || $0.hasSuffix("request_id=\(id)") }.map(String.init)
            return found != nil
        }
        return found
    }

    /// A client on a raw socket with a small receive buffer. Modes:
    /// - `steady RATE`: reads the whole body at about RATE bytes/s; prints `received N sha256:…`;
    /// - `stall`: reads nothing for 4 s, then what is left; prints `received N`;
    /// - `pause FLAG`: reads 64 KiB, waits for the file FLAG, reads the rest; prints `received N sha256:…`.
    static let client = """
        import hashlib, os, socket, sys, time
        port, path, rid, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        s.connect(("127.0.0.1", port)); s.settimeout(30)
        s.sendall(("GET %s HTTP/1.1\\r\\nHost: x\\r\\nX-Request-ID: %s\\r\\nConnection: close\\r\\n\\r\\n" % (path, rid)).encode())
        head = b""
        while b"\\r\\n\\r\\n" not in head:
            b = s.recv(1)
            if not b: break
            head += b
        body = hashlib.sha256(); got = 0
        def read(limit=None, rate=None):
            global got
            start = time.time()
            while limit is None or got < limit:
                try: b = s.recv(16384)
                except OSError: return False
                if not b: return False
                body.update(b); got += len(b)
                if rate: time.sleep(max(0, got / rate - (time.time() - start)))
            return True
        if mode == "steady":
            read(rate=float(sys.argv[5]))
        elif mode == "stall":
            time.sleep(4); read()
        elif mode == "pause":
            read(limit=65536)
            print("paused", flush=True)
            while not os.path.exists(sys.argv[5]): time.sleep(0.05)
            read()
        print("received %d sha256:%s" % (got, body.hexdigest()))
        """

    static func runClient(_ gateway: GatewayProcess, path: String, id: String, _ mode: [String]) async throws -> String {
        let python = try #require(ManagedProcess.which("python3"))
        let result = try await ManagedProcess.run(python, arguments: ["-c", client, String(gateway.port), path, id] + mode, timeout: .seconds(90))
        return String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whole blob and ranges (within the first part, across part boundaries, a suffix, an open
    /// end) from the cache: each the exact bytes, logged with their count and as sendfile.
    @Test func cachedBlobsGoOutWithSendfileWholeAndInRanges() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [5 * Self.MiB + 12345], layerFormat: .random)
        let layer = fixture.layers[0]
        let bytes = try #require(fixture.bytes(of: layer.digest))
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/zc")
            try await GatewayProcess.with(.upstreams([upstream.url])) { gateway in
                let url = "\(gateway.url)/v2/library/zc/blobs/\(layer.digest)"
                let cold = try await HTTPFetch.get(url)
                #expect(cold.status == 200 && cold.body == bytes)

                let whole = try await HTTPFetch.get(url, headers: [("X-Request-ID", "zc-whole")])
                #expect(whole.status == 200)
                #expect(Self.sha256(whole.body) == layer.digest, "the whole blob sent with sendfile is wrong")
                let line = try #require(await Self.requestLine(gateway, id: "zc-whole"), "\(gateway.logTail())")
                #expect(line.contains("sent_with=sendfile"), "the cached blob did not go out with sendfile: \(line)")
                #expect(line.contains("bytes=\(bytes.count)"), "the log does not count the blob's bytes: \(line)")
                #expect(line.contains("cache=hit"), "\(line)")

                let size = bytes.count
                let ranges: [(String, Range<Int>)] = [
                    ("bytes=0-0", 0..<1),
                    ("bytes=1000-1999", 1000..<2000),
                    ("bytes=1048000-3146000", 1_048_000..<3_146_001),
                    ("bytes=-1000", (size - 1000)..<size),
                    ("bytes=4000000-", 4_000_000..<size),
                ]
                for (index, (header, expected)) in ranges.enumerated() {
                    let id = "zc-range-\(index)"
                    let answer = try await HTTPFetch.get(url, headers: [("Range", header), ("X-Request-ID", id)])
                    #expect(answer.status == 206, "\(header): \(answer.status)")
                    #expect(answer.header("Content-Range") == "bytes \(expected.lowerBound)-\(expected.upperBound - 1)/\(size)")
                    #expect(answer.body == bytes.subdata(in: expected), "\(header): wrong bytes")
                    let logged = try #require(await Self.requestLine(gateway, id: id))
                    #expect(logged.contains("sent_with=sendfile") && logged.contains("bytes=\(expected.count)"), "\(header): \(logged)")
                }
                // A HEAD sends nothing; an unsatisfiable range is a 416 envelope, not a file.
                #expect(try await HTTPFetch.head(url).header("Content-Length") == String(size))
                #expect(try await HTTPFetch.get(url, headers: [("Range", "bytes=\(size)-")]).status == 416)
                #expect(try await HTTPFetch.get(url).body == bytes, "a keep-alive connection after ranges")
            }
        }
    }

    /// With `send_timeout: 1s`, a client that reads a cached blob slowly but steadily for
    /// several seconds gets all of it (sendfile goes part by part, so the channel becomes
    /// writable as it reads), while one that stops reading is cut and logged as aborted.
    @Test func aSteadySlowReaderOutlastsSendTimeoutAndAStalledOneIsCut() async throws {
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [24 * Self.MiB], layerFormat: .random)
        let layer = fixture.layers[0]
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/slow")
            var config = GatewayConfig.upstreams([upstream.url])
            config.extraYAML = "limits: {send_timeout: 1s}\n"
            try await GatewayProcess.with(config) { gateway in
                let path = "/v2/library/slow/blobs/\(layer.digest)"
                #expect(try await HTTPFetch.get("\(gateway.url)\(path)").status == 200)

                // 24 MiB at 6 MiB/s: about 4 s, four times the send timeout.
                let steady = try await Self.runClient(gateway, path: path, id: "zc-steady", ["steady", String(6 * Self.MiB)])
                #expect(steady == "received \(layer.size) \(layer.digest)", "the steady reader was cut or got wrong bytes: \(steady)")
                let steadyLine = try #require(await Self.requestLine(gateway, id: "zc-steady"))
                #expect(steadyLine.contains("sent_with=sendfile") && !steadyLine.contains("aborted="), "\(steadyLine)")

                let stalled = try await Self.runClient(gateway, path: path, id: "zc-stall", ["stall"])
                let received = try #require(Int(stalled.split(separator: " ").dropFirst().first ?? ""), "\(stalled)")
                #expect(received < layer.size, "the stalled client was never cut off")
                let stallLine = try #require(await Self.requestLine(gateway, id: "zc-stall"), "\(gateway.logTail())")
                #expect(stallLine.contains("aborted=") && stallLine.contains("sent_with=sendfile"), "\(stallLine)")
                // The gateway goes on serving.
                #expect(try await HTTPFetch.get("\(gateway.url)\(path)").body == fixture.bytes(of: layer.digest))
            }
        }
    }

    /// 64 slow clients of a cached blob hold no body buffers in the gateway: its anonymous
    /// memory stays flat (the buffered path held up to 1 MiB per client: MemoryReleaseTests).
    @Test func slowClientsOfACachedBlobHoldNoBuffers() async throws {
        #if os(Linux)
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [16 * Self.MiB], layerFormat: .random)
        let layer = fixture.layers[0]
        let curl = try #require(ManagedProcess.which("curl"))
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/flat")
            try await GatewayProcess.with(.upstreams([upstream.url])) { gateway in
                let url = "\(gateway.url)/v2/library/flat/blobs/\(layer.digest)"
                #expect(try await HTTPFetch.get(url).status == 200)
                let pid = try #require(gateway.pid)
                let before = try #require(MemoryReleaseTests.status(pid, "RssAnon"))
                let clients = Task {
                    try await withThrowingTaskGroup(of: Int32.self) { group in
                        for _ in 0..<64 {
                            group.addTask {
                                try await ManagedProcess.run(curl, arguments: [
                                    "-sS", "--limit-rate", "1M", "--max-time", "3", "-o", "/dev/null", url,
                                ], timeout: .seconds(30)).status
                            }
                        }
                        var statuses: [Int32] = []
                        for try await status in group { statuses.append(status) }
                        return statuses
                    }
                }
                try await Task.sleep(for: .seconds(2))
                let during = try #require(MemoryReleaseTests.status(pid, "RssAnon"))
                let statuses = try await clients.value
                #expect(statuses.allSatisfy { $0 == 28 || $0 == 0 }, "a client failed: \(statuses)")
                #expect(during - before < 16 * Self.MiB, "64 slow clients grew the gateway from \(before / Self.MiB) to \(during / Self.MiB) MiB")
            }
        }
        #endif
    }

    /// While a client is in the middle of a cached blob, the janitor (over `storage.max_size`
    /// after another blob arrives) cannot evict it: it evicts the other one. The client then
    /// gets every byte.
    @Test func aBlobBeingSentIsNotEvicted() async throws {
        let held = try ImageFixture.make(.ociImage, tag: "held", layerSizes: [24 * Self.MiB], layerFormat: .random)
        let other = try ImageFixture.make(.ociImage, tag: "other", layerSizes: [24 * Self.MiB], layerFormat: .random)
        let files = try TemporaryDirectory(prefix: "zc-evict")
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(held, to: upstream.hostPort, repository: "library/evict")
            try await skopeo.push(other, to: upstream.hostPort, repository: "library/evict")
            var config = GatewayConfig.upstreams([upstream.url])
            config.maxSize = "40MiB"
            try await GatewayProcess.with(config) { gateway in
                let cache = CacheInspection(gateway)
                let heldLayer = held.layers[0], otherLayer = other.layers[0]
                #expect(try await HTTPFetch.get("\(gateway.url)/v2/library/evict/blobs/\(heldLayer.digest)").status == 200)
                #expect(cache.contains(heldLayer.digest))

                let flag = files.appending("go")
                let python = try #require(ManagedProcess.which("python3"))
                let reader = try ManagedProcess(
                    name: "paused-reader", executable: python,
                    arguments: ["-c", Self.client, String(gateway.port), "/v2/library/evict/blobs/\(heldLayer.digest)", "zc-held", "pause", flag.path],
                    stdoutLog: files.appending("reader.log"))
                #expect(await eventually(timeout: .seconds(10), interval: .milliseconds(50)) {
                    (try? String(contentsOf: files.appending("reader.log"), encoding: .utf8))?.contains("paused") == true
                })

                // The other blob pushes the cache over its cap; the oldest (held) is leased.
                #expect(try await HTTPFetch.get("\(gateway.url)/v2/library/evict/blobs/\(otherLayer.digest)").status == 200)
                let settled = await eventually(timeout: .seconds(15), interval: .milliseconds(200)) { cache.blobBytes() <= 40 * Self.MiB }
                #expect(settled, "the janitor did not bring the cache under its cap: \(cache.blobBytes()) bytes\n\(gateway.logTail())")
                #expect(cache.contains(heldLayer.digest), "the blob being sent was evicted mid-send")
                #expect(!cache.contains(otherLayer.digest))

                _ = FileManager.default.createFile(atPath: flag.path, contents: Data())
                #expect(await reader.waitForExit(timeout: .seconds(60)))
                let output = (try? String(contentsOf: files.appending("reader.log"), encoding: .utf8)) ?? ""
                #expect(output.contains("received \(heldLayer.size) \(heldLayer.digest)"), "\(output)")
                let line = try #require(await Self.requestLine(gateway, id: "zc-held"))
                #expect(line.contains("sent_with=sendfile"), "\(line)")
            }
        }
    }

    /// A TLS listener cannot sendfile: the same cached blob, whole and in a range, streamed in
    /// buffers through TLS, with the right bytes and counted in the log.
    @Test func aTLSListenerStreamsCachedBlobsInBuffers() async throws {
        let openssl = try #require(ManagedProcess.which("openssl"))
        let curl = try #require(ManagedProcess.which("curl"))
        let files = try TemporaryDirectory(prefix: "zc-tls")
        let cert = files.appending("cert.pem"), key = files.appending("key.pem")
        let made = try await ManagedProcess.run(openssl, arguments: [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=mirrorgate-test",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key.path, "-out", cert.path,
        ])
        #expect(made.status == 0, "\(made.stderr)")
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [3 * Self.MiB + 7], layerFormat: .random)
        let layer = fixture.layers[0]
        let bytes = try #require(fixture.bytes(of: layer.digest))
        try await UpstreamRegistry.with { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/tls-zc")
            var config = GatewayConfig.upstreams([upstream.url])
            config.extraYAML = "tls: {cert: \"\(cert.path)\", key: \"\(key.path)\"}\n"
            try await GatewayProcess.with(config) { gateway in
                let url = "\(gateway.url)/v2/library/tls-zc/blobs/\(layer.digest)"
                func fetch(_ id: String, _ extra: [String] = []) async throws -> Data {
                    let out = files.appending("\(id).bin")
                    let result = try await ManagedProcess.run(curl, arguments: [
                        "-sS", "-f", "--cacert", cert.path, "-H", "X-Request-ID: \(id)", "-o", out.path,
                    ] + extra + [url])
                    #expect(result.status == 0, "\(result.stderr)")
                    return (try? Data(contentsOf: out)) ?? Data()
                }
                _ = try await fetch("tls-cold")
                #expect(try await fetch("tls-whole") == bytes)
                #expect(try await fetch("tls-range", ["-r", "1048000-2097999"]) == bytes.subdata(in: 1_048_000..<2_098_000))
                let whole = try #require(await Self.requestLine(gateway, id: "tls-whole"))
                #expect(whole.contains("cache=hit") && whole.contains("bytes=\(bytes.count)") && !whole.contains("sent_with="), "\(whole)")
                let range = try #require(await Self.requestLine(gateway, id: "tls-range"))
                #expect(range.contains("bytes=1050000") && !range.contains("sent_with="), "\(range)")
            }
        }
    }
}
