import Foundation

/// The test double of `Fixtures/registry_front.py` in front of a real registry: forwards
/// everything unchanged (bodies streamed; `Authorization` and `WWW-Authenticate` untouched)
/// until told to answer every repository request with a status (429 `TOOMANYREQUESTS`
/// with `Retry-After`, or a 5xx), or to apply Docker Hub's pull rate limit
/// (``rateLimit(limit:window:headerPrefix:head429:perUser:)``, in RegistryFront+RateLimit.swift).
public final class RegistryFront: Sendable {
    public let port: Int
    public let process: ManagedProcess
    public let directory: TemporaryDirectory

    public var url: String { "http://127.0.0.1:\(port)" }

    /// Starts a front forwarding to `backend` (for example an ``UpstreamRegistry``'s `url`)
    /// and waits until `GET /v2/` through it answers `expectStatus` (401 for a backend
    /// with auth, e.g. a ``TokenAuthRegistry`` or ``HtpasswdRegistry``).
    public static func start(backend: String, expectStatus: Int = 200) async throws -> RegistryFront {
        let front = try RegistryFront(backend: backend)
        do {
            try await front.process.waitForHTTP("\(front.url)/v2/", expectStatus: expectStatus, timeout: .seconds(20))
        } catch {
            await front.process.stop()
            throw error
        }
        return front
    }

    private init(backend: String) throws {
        port = try FreePort.allocate()
        directory = try TemporaryDirectory(prefix: "registry-front")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appending(path: "Fixtures/registry_front.py")
        guard let python = ManagedProcess.which("python3") else { throw ManagedProcess.Failure("python3 is not installed") }
        process = try ManagedProcess(
            name: "registry-front", executable: python,
            arguments: [script.path, "--listen", "127.0.0.1:\(port)", "--backend", backend],
            stdoutLog: directory.appending("front.log"))
    }

    /// Answer every `/v2/<name>/…` request with `status` (0 forwards again).
    public func fail(with status: Int) async throws {
        let response = try await HTTPFetch.request(
            "\(url)/_front/mode", method: "POST", headers: [("Content-Type", "application/json")],
            body: Data("{\"status\": \(status)}".utf8))
        guard response.status == 200 else { throw ManagedProcess.Failure("front refused mode \(status): \(response.status)") }
    }

    /// Forward without the `Range` header, so the backend answers 200 with the whole body.
    public func ignoreRange(_ ignore: Bool) async throws {
        let response = try await HTTPFetch.request(
            "\(url)/_front/mode", method: "POST", headers: [("Content-Type", "application/json")],
            body: Data("{\"ignore_range\": \(ignore)}".utf8))
        guard response.status == 200 else { throw ManagedProcess.Failure("front refused ignore_range: \(response.status)") }
    }

    /// Requests seen, as `METHOD PATH STATUS` lines.
    public func requests() async throws -> [String] {
        let response = try await HTTPFetch.get("\(url)/_front/log")
        return response.text.split(separator: "\n").map(String.init)
    }

    public func stop() async {
        await process.stop()
    }
}
