import AsyncHTTPClient
import Foundation

/// The test double of `Fixtures/registry_front.py` in front of a real registry: forwards
/// everything unchanged (bodies streamed; `Authorization` and `WWW-Authenticate` untouched)
/// until told to answer every repository request with a status (429 `TOOMANYREQUESTS`
/// with `Retry-After`, or a 5xx), to apply Docker Hub's pull rate limit
/// (``rateLimit(limit:window:headerPrefix:head429:perUser:)``, in RegistryFront+RateLimit.swift),
/// or to redirect blob requests (``redirectBlobs(to:)``, ``redirectLoop(_:)``, in
/// RegistryFront+Redirects.swift).
///
/// It listens on `host` (any loopback address: 127.0.0.2 plays "another host"), over
/// HTTPS with ``TLSFiles`` when given (a self-signed certificate from
/// ``makeCertificate(in:)``; its control endpoints are then reached without verifying it).
public final class RegistryFront: Sendable {
    /// A PEM certificate and its key, for a front that speaks HTTPS.
    public struct TLSFiles: Sendable {
        /// The PEM certificate.
        public let certificate: URL
        /// The PEM private key.
        public let key: URL
    }

    public let port: Int
    public let host: String
    public let usesTLS: Bool
    public let process: ManagedProcess
    public let directory: TemporaryDirectory

    /// `http(s)://<host>:<port>`.
    public var url: String { "\(usesTLS ? "https" : "http")://\(host):\(port)" }

    /// Starts a front forwarding to `backend` (for example an ``UpstreamRegistry``'s `url`)
    /// and waits until `GET /v2/` through it answers `expectStatus` (401 for a backend
    /// with auth, e.g. a ``TokenAuthRegistry`` or ``HtpasswdRegistry``).
    ///
    /// - Parameters:
    ///   - host: The loopback address to listen on.
    ///   - tls: Speak HTTPS with these files.
    ///   - mode: A JSON object applied at start, as ``setMode(json:)`` would.
    public static func start(
        backend: String, expectStatus: Int = 200, host: String = "127.0.0.1", tls: TLSFiles? = nil, mode: String? = nil
    ) async throws -> RegistryFront {
        let front = try RegistryFront(backend: backend, host: host, tls: tls, mode: mode)
        do {
            if tls == nil {
                try await front.process.waitForHTTP("\(front.url)/v2/", expectStatus: expectStatus, timeout: .seconds(20))
            } else {
                try await front.waitForTLS(expectStatus: expectStatus, timeout: .seconds(20))
            }
        } catch {
            await front.process.stop()
            throw error
        }
        return front
    }

    private init(backend: String, host: String, tls: TLSFiles?, mode: String?) throws {
        port = try FreePort.allocate()
        self.host = host
        usesTLS = tls != nil
        directory = try TemporaryDirectory(prefix: "registry-front")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appending(path: "Fixtures/registry_front.py")
        guard let python = ManagedProcess.which("python3") else { throw ManagedProcess.Failure("python3 is not installed") }
        var arguments = [script.path, "--listen", "\(host):\(port)", "--backend", backend]
        if let tls { arguments += ["--tls-cert", tls.certificate.path, "--tls-key", tls.key.path] }
        if let mode { arguments += ["--mode", mode] }
        process = try ManagedProcess(
            name: "registry-front", executable: python, arguments: arguments,
            stdoutLog: directory.appending("front.log"))
    }

    /// Makes a self-signed certificate for 127.0.0.1 and 127.0.0.2 (`openssl req -x509`) in `directory`.
    public static func makeCertificate(in directory: TemporaryDirectory) async throws -> TLSFiles {
        guard let openssl = ManagedProcess.which("openssl") else { throw ManagedProcess.Failure("openssl is not installed") }
        let files = TLSFiles(certificate: directory.appending("front-cert.pem"), key: directory.appending("front-key.pem"))
        let made = try await ManagedProcess.run(openssl, arguments: [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=registry-front", "-addext", "subjectAltName=IP:127.0.0.1,IP:127.0.0.2",
            "-keyout", files.key.path, "-out", files.certificate.path,
        ], timeout: .seconds(30))
        guard made.succeeded else { throw ManagedProcess.Failure("openssl req failed: \(made.stderr)") }
        return files
    }

    /// Waits for the "listening on" line, then for `GET /v2/` over TLS to answer `expectStatus`.
    private func waitForTLS(expectStatus: Int, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        var last = "no attempt"
        while true {
            guard process.isRunning else { throw ManagedProcess.Failure("registry-front exited\n\(process.logTail())") }
            if process.stdoutText().contains("listening on ") {
                do {
                    let response = try await control("/v2/")
                    if response.status == expectStatus { return }
                    last = "status \(response.status)"
                } catch {
                    last = "\(error)"
                }
            }
            if ContinuousClock.now >= deadline {
                throw ManagedProcess.Failure("registry-front: \(url)/v2/ did not answer \(expectStatus) (last: \(last))\n\(process.logTail())")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Reaches the front itself: through ``HTTPFetch`` over HTTP; over HTTPS with a client
    /// that does not verify the test certificate. Redirects are never followed here.
    func control(_ path: String, method: String = "GET", body: Data? = nil) async throws -> HTTPFetch.Response {
        var headers: [(String, String)] = []
        if body != nil { headers.append(("Content-Type", "application/json")) }
        guard usesTLS else { return try await HTTPFetch.request(url + path, method: method, headers: headers, body: body) }
        var request = HTTPClientRequest(url: url + path)
        request.method = .init(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(body) }
        let response = try await Self.unverifiedClient.execute(request, timeout: .seconds(30))
        let data = Data(try await response.body.collect(upTo: 64 << 20).readableBytesView)
        return HTTPFetch.Response(
            status: Int(response.status.code), headers: response.headers.map { (name: $0.name, value: $0.value) }, body: data)
    }

    /// For the control endpoints of HTTPS fronts only (their certificate is self-signed).
    /// Never shut down: it lives as long as the test process, like `HTTPClient.shared`.
    private static let unverifiedClient = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: .init(certificateVerification: .none, redirectConfiguration: .disallow))

    /// Applies a mode (a JSON object, the body of `POST /_front/mode`).
    public func setMode(json: String) async throws {
        let response = try await control("/_front/mode", method: "POST", body: Data(json.utf8))
        guard response.status == 200 else { throw ManagedProcess.Failure("front refused mode \(json): \(response.status) \(response.text)") }
    }

    /// Answer every `/v2/<name>/…` request with `status` (0 forwards again).
    public func fail(with status: Int) async throws {
        try await setMode(json: "{\"status\": \(status)}")
    }

    /// Forward without the `Range` header, so the backend answers 200 with the whole body.
    public func ignoreRange(_ ignore: Bool) async throws {
        try await setMode(json: "{\"ignore_range\": \(ignore)}")
    }

    /// Requests seen, as `METHOD PATH STATUS` lines.
    public func requests() async throws -> [String] {
        let response = try await control("/_front/log")
        return response.text.split(separator: "\n").map(String.init)
    }

    public func stop() async {
        await process.stop()
    }
}
