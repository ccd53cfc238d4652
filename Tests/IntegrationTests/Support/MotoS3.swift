import Foundation

/// `moto_server` (PyPI `moto[server]`, installed by `scripts/install-moto`) as the S3 store of
/// a gateway under test: started on a free 127.0.0.1 port, one bucket created, stopped by PID.
///
/// With `checkSignatures`, it runs with `INITIAL_NO_AUTH_ACTION_COUNT=3`: the three free
/// requests make an IAM user with `s3:*` and its key, and every later request's SigV4 header
/// signature is checked, so a wrong secret gets moto's 403 `SignatureDoesNotMatch`. Without it
/// any credentials pass, which the redirect tests need: moto 5.2.1 with checking on answers a
/// presigned GET with a 500, because it looks for an `Authorization` header.
///
/// The bucket is set up and listed with boto3 (`Fixtures/moto_bucket.py`), a client other
/// than the gateway's own.
public final class MotoS3: Sendable {
    /// `http://127.0.0.1:<port>`.
    public let endpoint: String
    public let bucket: String
    public let accessKeyID: String
    public let secretAccessKey: String
    public let checksSignatures: Bool
    public let process: ManagedProcess
    public let directory: TemporaryDirectory

    /// `$MOTO_SERVER`, `moto_server` on `PATH`, or the one `scripts/install-moto` puts under `.build`.
    static func locate() throws -> URL {
        if let explicit = ProcessInfo.processInfo.environment["MOTO_SERVER"] { return URL(fileURLWithPath: explicit) }
        if let found = ManagedProcess.which("moto_server") { return found }
        let installed = packageRoot.appending(path: ".build/moto/bin/moto_server")
        guard FileManager.default.isExecutableFile(atPath: installed.path) else {
            throw ManagedProcess.Failure("moto_server is not installed; `make test` installs it (scripts/install-moto)")
        }
        return installed
    }

    /// The Python with boto3: the venv's next to its `moto_server`, else `python3`.
    static func python(besides moto: URL) throws -> URL {
        let sibling = moto.deletingLastPathComponent().appending(path: "python3")
        if !moto.path.contains("/shims/"), FileManager.default.isExecutableFile(atPath: sibling.path) { return sibling }
        guard let python = ManagedProcess.which("python3") else { throw ManagedProcess.Failure("python3 is not installed") }
        return python
    }

    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    static var script: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appending(path: "Fixtures/moto_bucket.py")
    }

    private let python: URL

    /// Starts a server and creates `bucket` in it.
    public static func start(checkSignatures: Bool, bucket: String = "mirrorgate-cache") async throws -> MotoS3 {
        let moto = try locate()
        let python = try python(besides: moto)
        let directory = try TemporaryDirectory(prefix: "mirrorgate-moto")
        let port = try FreePort.allocate()
        var environment = ["AWS_DEFAULT_REGION": "us-east-1"]
        if checkSignatures { environment["INITIAL_NO_AUTH_ACTION_COUNT"] = "3" }
        let process = try ManagedProcess(
            name: "moto", executable: moto, arguments: ["-H", "127.0.0.1", "-p", String(port)], environment: environment,
            stdoutLog: directory.appending("moto.log"))
        let endpoint = "http://127.0.0.1:\(port)"
        do {
            try await process.waitForHTTP("\(endpoint)/moto-api/", expectStatus: 200, timeout: .seconds(60))
            var arguments = [script.path, "setup", endpoint, bucket]
            if checkSignatures { arguments.append("--iam") }
            let setup = try await ManagedProcess.run(python, arguments: arguments, timeout: .seconds(60))
            guard setup.succeeded, let keys = try JSONSerialization.jsonObject(with: setup.stdout) as? [String: String],
                let key = keys["access_key_id"], let secret = keys["secret_access_key"]
            else {
                throw ManagedProcess.Failure("moto bucket setup failed: \(setup.stderr)\n\(process.logTail())")
            }
            return MotoS3(
                endpoint: endpoint, bucket: bucket, accessKeyID: key, secretAccessKey: secret, checksSignatures: checkSignatures,
                process: process, directory: directory, python: python)
        } catch {
            await process.stop()
            throw error
        }
    }

    /// Starts one, runs `body`, and stops it whether or not `body` throws.
    public static func with<T>(checkSignatures: Bool, _ body: (MotoS3) async throws -> T) async throws -> T {
        let moto = try await start(checkSignatures: checkSignatures)
        do {
            let result = try await body(moto)
            await moto.stop()
            return result
        } catch {
            await moto.stop()
            throw error
        }
    }

    private init(
        endpoint: String, bucket: String, accessKeyID: String, secretAccessKey: String, checksSignatures: Bool, process: ManagedProcess,
        directory: TemporaryDirectory, python: URL
    ) {
        self.endpoint = endpoint
        self.bucket = bucket
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.checksSignatures = checksSignatures
        self.process = process
        self.directory = directory
        self.python = python
    }

    /// Stops the server by PID and waits for it. Idempotent.
    public func stop() async {
        await process.stop(grace: .seconds(2))
    }

    /// Every object in the bucket, key → size, as boto3 lists it.
    public func objects() async throws -> [String: Int] {
        let result = try await ManagedProcess.run(
            python, arguments: [Self.script.path, "list", endpoint, bucket, accessKeyID, secretAccessKey], timeout: .seconds(60))
        guard result.succeeded, let objects = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Int] else {
            throw ManagedProcess.Failure("listing the bucket failed: \(result.stderr)")
        }
        return objects
    }

    /// The key a gateway stores `digest` (`sha256:<hex>`) under.
    public static func key(prefix: String, digest: String) -> String {
        let hex = digest.dropFirst("sha256:".count)
        return "\(prefix)blobs/sha256/\(hex.prefix(2))/\(hex)"
    }

    /// The lines under `storage:` for this bucket (``GatewayConfig/storageLines``), with the
    /// secret in a file in this server's directory, or `secret` inline instead.
    public func storageLines(prefix: String, redirect: Bool = false, secret: String? = nil) throws -> [String] {
        let secretLine: String
        if let secret {
            secretLine = "secret_access_key: \"\(secret)\""
        } else {
            let file = directory.appending("s3-secret")
            try (secretAccessKey + "\n").write(to: file, atomically: true, encoding: .utf8)
            secretLine = "secret_access_key_file: \(file.path)"
        }
        return [
            "backend: s3", "s3:", "  endpoint: \(endpoint)", "  region: us-east-1", "  bucket: \(bucket)", "  prefix: \"\(prefix)\"",
            "  path_style: true", "  access_key_id: \(accessKeyID)", "  \(secretLine)", "  redirect: \(redirect)",
        ]
    }

    /// moto's log (one line per request it served).
    public func logText() -> String { process.stdoutText() }
}
