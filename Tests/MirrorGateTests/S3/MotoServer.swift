#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import AsyncHTTPClient
import Foundation
import Logging
import MirrorGateS3
import NIOCore
import NIOHTTP1
import Testing

@testable import MirrorGateS3

/// `moto_server` (PyPI `moto[server]`) as a real S3 for the client tests: started on a free
/// 127.0.0.1 port, one bucket created, stopped by PID.
///
/// With `auth`, it runs with `INITIAL_NO_AUTH_ACTION_COUNT=3`: moto checks the SigV4 header
/// signature of every request after the first three, which create an IAM user, give it `s3:*`
/// and make its access key. So every S3 request of the tests is signature-checked, and a wrong
/// secret gets moto's 403 `SignatureDoesNotMatch`.
///
/// A `/bin/sh` watchdog kills the server if the test process dies without stopping it.
final class MotoServer: Sendable {
    let endpoint: String
    let bucket: String
    let accessKeyID: String
    let secretAccessKey: String
    let pid: Int32
    let log: String
    private let process: Process
    private let watchdog: Process?
    private let directory: TemporaryDirectory

    /// The server of the current suite (see ``MotoScope``).
    @TaskLocal static var current: MotoServer?

    /// `$MOTO_SERVER`, `moto_server` on `PATH`, or the one `scripts/install-moto` puts under `.build`.
    static let executable: String? = {
        let environment = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let explicit = environment["MOTO_SERVER"] { candidates.append(explicit) }
        for dir in (environment["PATH"] ?? "").split(separator: ":") { candidates.append("\(dir)/moto_server") }
        candidates.append(packageRoot + "/.build/moto/bin/moto_server")
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// The Python that has moto (and botocore) installed: next to a venv's `moto_server`, else `python3`.
    static let python: String = {
        if let executable, case let sibling = URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("python3").path,
            FileManager.default.isExecutableFile(atPath: sibling), !executable.contains("/shims/")
        {
            return sibling
        }
        return "python3"
    }()

    static let skipMessage = "moto_server not found (PATH, $MOTO_SERVER or .build/moto); `make test` installs it with scripts/install-moto"

    static var packageRoot: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.path
    }

    private init(
        endpoint: String, bucket: String, accessKeyID: String, secretAccessKey: String, process: Process, watchdog: Process?,
        directory: TemporaryDirectory, log: String
    ) {
        self.endpoint = endpoint
        self.bucket = bucket
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.process = process
        self.pid = process.processIdentifier
        self.watchdog = watchdog
        self.directory = directory
        self.log = log
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Starts a server and creates `bucket` in it.
    static func start(auth: Bool, bucket: String = "mg-test") async throws -> MotoServer {
        guard let executable else { throw Failure(description: skipMessage) }
        let directory = try TemporaryDirectory("moto")
        let log = directory.path + "/moto.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let port = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-H", "127.0.0.1", "-p", String(port)]
        var environment = ProcessInfo.processInfo.environment
        environment["INITIAL_NO_AUTH_ACTION_COUNT"] = auth ? "3" : nil
        // moto signs its answers' regions and accounts from these when they are unset.
        environment["AWS_DEFAULT_REGION"] = "us-east-1"
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = output
        process.standardError = output
        try process.run()
        try? output.close()
        let endpoint = "http://127.0.0.1:\(port)"
        let watchdog = startWatchdog(child: process.processIdentifier)
        var server = MotoServer(
            endpoint: endpoint, bucket: bucket, accessKeyID: "test", secretAccessKey: "test", process: process,
            watchdog: watchdog, directory: directory, log: log)
        do {
            try await server.waitUntilReady()
            if auth {
                let (key, secret) = try await server.createIAMUser()
                server = MotoServer(
                    endpoint: endpoint, bucket: bucket, accessKeyID: key, secretAccessKey: secret, process: process,
                    watchdog: watchdog, directory: directory, log: log)
            }
            try await server.createBucket()
            return server
        } catch {
            await server.stop()
            throw error
        }
    }

    /// SIGKILL by PID (moto keeps nothing worth a clean shutdown), wait for the exit, remove the log.
    func stop() async {
        if process.isRunning {
            kill(pid, SIGCONT)
            kill(pid, SIGKILL)
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        if let watchdog, watchdog.isRunning { kill(watchdog.processIdentifier, SIGKILL) }
        directory.cleanUp()
    }

    /// Freezes (`SIGSTOP`) or resumes (`SIGCONT`) the server, to make it stall mid-transfer.
    func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    func logTail() -> String {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(30).joined(separator: "\n")
    }

    /// A client for this server's bucket, under its own key prefix so parallel tests do not meet.
    ///
    /// The default prefix has no `/`: moto 5.2.1 decodes `%2F` (and `%24`, `%2B`, UTF-8, ...) in
    /// the URL before it recomputes a signature, so with checking on it rejects any correctly
    /// signed request whose query (a list prefix) or path holds those characters; boto3's own
    /// ListObjectsV2 with a `/` in the prefix fails there the same way. Keys with them are tested
    /// without checking (``S3PresignAndStallTests``).
    func client(
        prefix: String = "t\(UUID().uuidString.prefix(8))-", accessKeyID: String? = nil, secretAccessKey: String? = nil,
        bucket: String? = nil, timeout: Duration = .seconds(20)
    ) throws -> S3Client {
        try S3Client(
            configuration: S3Configuration(
                endpoint: endpoint, region: "us-east-1", bucket: bucket ?? self.bucket, prefix: prefix, addressing: .pathStyle,
                accessKeyID: accessKeyID ?? self.accessKeyID, secretAccessKey: secretAccessKey ?? self.secretAccessKey,
                timeout: timeout),
            logger: .init(label: "s3-test") { _ in SwiftLogNoOpLogHandler() })
    }

    // MARK: - Setup

    private func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        var last = "no attempt"
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw Failure(description: "moto_server exited with \(process.terminationStatus)\n\(logTail())")
            }
            do {
                let response = try await HTTPClient.shared.execute(
                    HTTPClientRequest(url: endpoint + "/moto-api/"), timeout: .seconds(2))
                _ = try await response.body.collect(upTo: 1 << 20)
                if response.status == .ok { return }
                last = "status \(response.status)"
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Failure(description: "moto_server did not answer within 60 s (last: \(last))\n\(logTail())")
    }

    /// The three unauthenticated actions: CreateUser, PutUserPolicy (s3:*), CreateAccessKey.
    private func createIAMUser() async throws -> (String, String) {
        let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#
        _ = try await iam(["Action": "CreateUser", "UserName": "mirrorgate"])
        _ = try await iam(["Action": "PutUserPolicy", "UserName": "mirrorgate", "PolicyName": "s3", "PolicyDocument": policy])
        let root = try await iam(["Action": "CreateAccessKey", "UserName": "mirrorgate"])
        guard let key = root.child("CreateAccessKeyResult")?.child("AccessKey"), let id = key.value("AccessKeyId"),
            let secret = key.value("SecretAccessKey")
        else { throw Failure(description: "CreateAccessKey answer without a key") }
        return (id, secret)
    }

    /// One IAM query-API call (form POST). It is signed so moto routes it to IAM by the
    /// credential scope; within the unauthenticated window the signature is not checked.
    private func iam(_ parameters: [String: String]) async throws -> S3XMLElement {
        var items = parameters.map { (name: $0.key, value: $0.value) }
        items.append(("Version", "2010-05-08"))
        let body = ByteBuffer(string: S3URIEncoding.canonicalQuery(items))
        let response = try await signedRequest(
            method: .POST, path: "/", body: body, service: "iam",
            extraHeaders: [("content-type", "application/x-www-form-urlencoded; charset=utf-8")], credentials: ("test", "test"))
        let text = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            throw Failure(description: "IAM \(parameters["Action"]!): \(response.status) \(String(buffer: text))")
        }
        return try S3XMLElement.parse(Data(text.readableBytesView), what: "IAM")
    }

    /// `PUT /<bucket>`, signed with the server's credentials (checked in auth mode).
    private func createBucket() async throws {
        let response = try await signedRequest(
            method: .PUT, path: "/" + bucket, body: nil, service: "s3", extraHeaders: [], credentials: (accessKeyID, secretAccessKey))
        let text = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            throw Failure(description: "CreateBucket \(bucket): \(response.status) \(String(buffer: text))\n\(logTail())")
        }
    }

    private func signedRequest(
        method: HTTPMethod, path: String, body: ByteBuffer?, service: String, extraHeaders: [(name: String, value: String)],
        credentials: (String, String)
    ) async throws -> HTTPClientResponse {
        let signer = SigV4Signer(accessKeyID: credentials.0, secretAccessKey: credentials.1, region: "us-east-1", service: service)
        let timestamp = SigV4Timestamp(Date())
        let hash = body.map(SigV4Signer.sha256Hex) ?? SigV4Signer.emptyPayloadHash
        let host = String(endpoint.dropFirst("http://".count))
        let headers = extraHeaders + [("host", host), ("x-amz-date", timestamp.amzDate), ("x-amz-content-sha256", hash)]
        let signature = signer.sign(.init(method: method.rawValue, path: path, headers: headers), payloadHash: hash, timestamp: timestamp)
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.add(name: "authorization", value: signature.authorization)
        if let body { request.body = .bytes(body) }
        return try await HTTPClient.shared.execute(request, timeout: .seconds(30))
    }

    // MARK: - Processes and ports

    /// A port on 127.0.0.1 that was free a moment ago (bind to 0, read it back, close).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else { throw Failure(description: "bind: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `/bin/sh` polling this test process; when it is gone, it SIGKILLs `child`.
    private static func startWatchdog(child: Int32) -> Process? {
        let script = """
            while kill -0 "$1" 2>/dev/null; do
              kill -0 "$2" 2>/dev/null || exit 0
              sleep 0.5
            done
            kill -KILL "$2" 2>/dev/null
            """
        let watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: "/bin/sh")
        watchdog.arguments = ["-c", script, "moto-watchdog", String(getpid()), String(child)]
        watchdog.standardInput = FileHandle.nullDevice
        watchdog.standardOutput = FileHandle.nullDevice
        watchdog.standardError = FileHandle.nullDevice
        return (try? watchdog.run()) != nil ? watchdog : nil
    }
}

/// Starts one ``MotoServer`` around a whole suite (not per test) and stops it afterwards; tests
/// find it in ``MotoServer/current``.
struct MotoScope: SuiteTrait, TestScoping {
    let auth: Bool
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard MotoServer.executable != nil else { return try await function() }
        let server = try await MotoServer.start(auth: auth)
        do {
            try await MotoServer.$current.withValue(server) { try await function() }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}

extension Trait where Self == MotoScope {
    /// One moto_server for the suite; `auth` turns SigV4 checking on.
    static func motoServer(auth: Bool) -> Self { MotoScope(auth: auth) }
}
