import Foundation

/// The test double of `Fixtures/hostile_upstream.py`: an upstream registry that answers as an
/// attack needs, and beside it an "internal service" that must never be reached through the
/// gateway and logs every request it gets.
///
/// The upstream picks a behaviour (a *mode*) from the first component of the repository
/// name: `/v2/<mode>/...`. Built-in modes (parameters and defaults are in the script's
/// docstring): `notfound`, `retryafter` (429 with a huge `Retry-After`), `rlwindow`
/// (`ratelimit-remaining: 0;w=9223372036854775807`), `redir` (302 to the internal service),
/// `realm` (401 naming a token realm), `serve` (any status, body, media type and digest),
/// `html` (a manifest that is a script), `stall`, `drip`, `huge` (`Content-Length` 10^17) and
/// `endless`. ``configure(_:)`` defines more, changes their parameters, routes other first
/// components to them (`routes`, e.g. `privorg` to `realm`) and sets the `default` mode.
///
/// Both listeners take a port the kernel picks (no race for a free port); by default the
/// upstream listens on 127.0.0.1 and the internal service on 127.0.0.5, which no other test
/// binds. Every request to either is logged with the headers as received (``requests()``).
public final class HostileUpstream: Sendable {
    /// One request the upstream or the internal service received.
    public struct Request: Sendable, Decodable, CustomStringConvertible {
        /// Seconds since 1970 when it arrived.
        public let time: Double
        /// `upstream` or `internal`.
        public let listener: String
        public let method: String
        /// The request target as sent (path and query).
        public let path: String
        /// Header fields in the order received, each `[name, value]`.
        public let headers: [[String]]
        /// The request body as text (at most 64 KiB), e.g. a token request's form.
        public let body: String
        /// The mode that answered (`nil` on the internal service and for `/v2/`).
        public let mode: String?

        /// The first value of header `name` (case-insensitive).
        public func header(_ name: String) -> String? {
            headers.first { $0.count == 2 && $0[0].caseInsensitiveCompare(name) == .orderedSame }?[1]
        }
        /// The `Authorization` header, if any.
        public var authorization: String? { header("Authorization") }
        public var isInternal: Bool { listener == "internal" }

        public var description: String {
            "\(listener) \(method) \(path)" + (authorization.map { " auth=\($0.prefix(16))…" } ?? "") + (body.isEmpty ? "" : " body=\(body.prefix(80))")
        }
    }

    /// The upstream's address.
    public let host: String
    public let port: Int
    /// The internal service's address.
    public let internalHost: String
    public let internalPort: Int
    public let process: ManagedProcess
    public let directory: TemporaryDirectory
    /// The request log, one JSON object per line (written before each answer).
    public let logURL: URL

    /// `http://<host>:<port>`, the upstream.
    public var url: String { "http://\(host):\(port)" }
    /// `http://<internalHost>:<internalPort>`, the internal service.
    public var internalURL: String { "http://\(internalHost):\(internalPort)" }

    /// Starts both listeners and waits until the upstream answers `GET /v2/`.
    ///
    /// - Parameters:
    ///   - host: The upstream's loopback address.
    ///   - internalHost: The internal service's loopback address.
    ///   - config: A JSON configuration applied at start, as ``configure(_:)`` would.
    public static func start(host: String = "127.0.0.1", internalHost: String = "127.0.0.5", config: String? = nil) async throws -> HostileUpstream {
        let directory = try TemporaryDirectory(prefix: "hostile-upstream")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appending(path: "Fixtures/hostile_upstream.py")
        guard let python = ManagedProcess.which("python3") else { throw ManagedProcess.Failure("python3 is not installed") }
        let logURL = directory.appending("requests.jsonl")
        var arguments = [script.path, "--listen", "\(host):0", "--internal", "\(internalHost):0", "--log", logURL.path]
        if let config { arguments += ["--config", config] }
        let process = try ManagedProcess(
            name: "hostile-upstream", executable: python, arguments: arguments, stdoutLog: directory.appending("hostile.log"))
        do {
            let deadline = ContinuousClock.now + .seconds(30)
            var ports: (Int, Int)?
            while true {
                // The output first: a starved test process may look only after the deadline.
                ports = Self.listeningPorts(process.stdoutText())
                if ports != nil { break }
                guard process.isRunning, ContinuousClock.now < deadline else {
                    throw ManagedProcess.Failure("hostile upstream did not start\n\(process.logTail())")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            let upstream = HostileUpstream(
                host: host, port: ports!.0, internalHost: internalHost, internalPort: ports!.1,
                process: process, directory: directory, logURL: logURL)
            try await process.waitForHTTP("\(upstream.url)/v2/", expectStatus: 200, timeout: .seconds(20))
            return upstream
        } catch {
            await process.stop()
            throw error
        }
    }

    /// Starts one, runs `body`, and stops it whether or not `body` throws.
    public static func with<T>(
        host: String = "127.0.0.1", internalHost: String = "127.0.0.5", config: String? = nil,
        _ body: (HostileUpstream) async throws -> T
    ) async throws -> T {
        let upstream = try await start(host: host, internalHost: internalHost, config: config)
        do {
            let result = try await body(upstream)
            await upstream.stop()
            return result
        } catch {
            await upstream.stop()
            throw error
        }
    }

    private init(host: String, port: Int, internalHost: String, internalPort: Int, process: ManagedProcess, directory: TemporaryDirectory, logURL: URL) {
        self.host = host
        self.port = port
        self.internalHost = internalHost
        self.internalPort = internalPort
        self.process = process
        self.directory = directory
        self.logURL = logURL
    }

    /// (upstream port, internal port) from the script's "listening on" lines.
    private static func listeningPorts(_ output: String) -> (Int, Int)? {
        func port(after prefix: String) -> Int? {
            guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }),
                  let colon = line.lastIndex(of: ":")
            else { return nil }
            return Int(line[line.index(after: colon)...])
        }
        guard let upstream = port(after: "listening on "), let service = port(after: "internal listening on ") else { return nil }
        return (upstream, service)
    }

    /// Applies a configuration: a JSON object with `modes`, `routes` and/or `default`
    /// (the script's docstring has the details), for example
    /// `{"routes": {"privorg": "realm"}, "modes": {"realm": {"realm": "http://127.0.0.1:5001/token"}}}`.
    public func configure(_ json: String) async throws {
        let response = try await HTTPFetch.request(
            "\(url)/_hostile/config", method: "POST", headers: [("Content-Type", "application/json")], body: Data(json.utf8))
        guard response.status == 200 else { throw ManagedProcess.Failure("hostile upstream refused \(json): \(response.status) \(response.text)") }
    }

    /// Every request so far, oldest first.
    public func requests() -> [Request] {
        let text = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
        let decoder = JSONDecoder()
        return text.split(separator: "\n").compactMap { try? decoder.decode(Request.self, from: Data($0.utf8)) }
    }

    /// The requests the upstream received.
    public func upstreamRequests() -> [Request] { requests().filter { !$0.isInternal } }

    /// The requests the internal service received (none, if the gateway is safe).
    public func internalRequests() -> [Request] { requests().filter(\.isInternal) }

    /// The raw log, e.g. to check that a secret never appears in it.
    public func rawLog() -> String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// Empties the log.
    public func clearRequests() async throws {
        let response = try await HTTPFetch.request("\(url)/_hostile/clear", method: "POST")
        guard response.status == 200 else { throw ManagedProcess.Failure("hostile upstream: clear answered \(response.status)") }
    }

    /// Stops both listeners (one process) by PID and waits for it. Idempotent.
    public func stop() async {
        await process.stop()
    }
}
