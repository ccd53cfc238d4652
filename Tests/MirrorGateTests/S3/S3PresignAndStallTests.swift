#if canImport(Glibc)
import Glibc
#endif
import AsyncHTTPClient
import Foundation
import Logging
import MirrorGateS3
import NIOCore
import Synchronization
import Testing

/// Presigned URLs and stalled transfers, against a `moto_server` without signature checking.
///
/// moto 5.2.1 cannot serve a presigned GET with checking on (it looks for an `Authorization`
/// header and answers 500), and with checking off it does not verify presigned signatures or
/// expiry at all: a tampered or expired URL still gets 200. So the URL is checked two ways
/// here: moto serves the right bytes to a plain HTTP client (path, query and key encoding are
/// right), and botocore, the AWS SDK's own signer installed with moto, computes the same URL for
/// the same inputs (the signature is right). The published AWS vector is in ``SigV4SignerTests``.
///
/// Serialized: the stall tests freeze the whole server with SIGSTOP.
@Suite(
    "S3 presigned URLs and stalls against moto_server", .serialized, .timeLimit(.minutes(2)),
    .enabled(if: MotoServer.executable != nil, Comment(rawValue: MotoServer.skipMessage)), .motoServer(auth: false))
struct S3PresignAndStallTests {
    var server: MotoServer { MotoServer.current! }

    @Test func presignedGETWorksWithAPlainClient() async throws {
        try await S3TestSupport.using(server.client()) { s3 in
            let content = S3TestSupport.randomBytes(70_000)
            let key = "blobs/sha256/ab/a b+c"
            _ = try await s3.put(key, body: S3TestSupport.body(content), length: Int64(content.count), sha256: S3TestSupport.sha256Hex(content))
            let url = try s3.presignedGET(key, expires: .seconds(600))
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
            #expect(response.status == .ok)
            let body = try await response.body.collect(upTo: 1 << 20)
            #expect(Array(body.readableBytesView) == content)
        }
    }

    @Test func keysThatNeedEncoding() async throws {
        try await S3TestSupport.using(server.client(prefix: "enc odé/")) { s3 in
            let key = "a b/c+d$e&f=g;h,i@j(k)'l!m*n:o%p/ünï€~_.txt"
            _ = try await s3.put(key, bytes: ByteBuffer(string: "encoded"))
            let object = try #require(try await s3.get(key))
            #expect(try await S3TestSupport.read(object) == Array("encoded".utf8))
            // The listing shows the key moto stored: exactly the one meant, decoded once.
            #expect(try await s3.list(prefix: "a b/").entries.map(\.key) == [key])
            try await s3.delete(key)
            #expect(try await s3.head(key) == nil)
        }
    }

    @Test(arguments: ["blobs/sha256/ab/abcdef", "a b/c+d$e&f=g;h/ünï€~_.txt"])
    func presignedURLMatchesBotocore(key: String) async throws {
        let date = Date(timeIntervalSince1970: 1_796_116_760)
        try await S3TestSupport.using(server.client(prefix: "mg/")) { s3 in
            let ours = try s3.presignedGET(key, expires: .seconds(900), at: date)
            let script = """
                import sys, datetime
                from unittest import mock
                import botocore.auth, botocore.awsrequest, botocore.credentials
                from urllib.parse import quote
                url, key, secret = sys.argv[1], sys.argv[2], sys.argv[3]
                auth = botocore.auth.S3SigV4QueryAuth(botocore.credentials.Credentials(key, secret), "s3", "us-east-1", expires=900)
                request = botocore.awsrequest.AWSRequest(method="GET", url=url)
                with mock.patch("botocore.auth.get_current_datetime", return_value=datetime.datetime(2026, 12, 1, 9, 19, 20)):
                    auth.add_auth(request)
                print(request.url)
                """
            let unsigned = server.endpoint + "/" + server.bucket + "/" + S3URIEncoding.path("mg/" + key)
            let theirs = try run(MotoServer.python, ["-c", script, unsigned, server.accessKeyID, server.secretAccessKey])
            #expect(Self.queryItems(ours) == Self.queryItems(theirs), "ours: \(ours)\nbotocore: \(theirs)")
            #expect(ours.split(separator: "?").first == theirs.split(separator: "?").first)
        }
    }

    @Test func stalledDownloadFailsWithTimeout() async throws {
        let content = S3TestSupport.randomBytes(48 * 1024 * 1024)
        try await S3TestSupport.using(server.client(timeout: .seconds(2))) { s3 in
            _ = try await s3.put("stall", body: S3TestSupport.body(content, chunk: 1 << 20), length: Int64(content.count), sha256: S3TestSupport.sha256Hex(content))
            let object = try #require(try await s3.get("stall"))
            var iterator = object.body.makeAsyncIterator()
            _ = try await iterator.next()
            // Frozen mid-body: socket buffers drain, then nothing comes.
            server.signal(SIGSTOP)
            defer { server.signal(SIGCONT) }
            var received = 0
            let error = await S3TestSupport.s3Error {
                while let chunk = try await iterator.next() { received += chunk.readableBytes }
            }
            #expect(error?.code == .timeout, "got \(String(describing: error)) after \(received) bytes")
            #expect(error?.category == .unavailable)
            #expect(received < content.count)
        }
    }

    @Test func stalledUploadFailsWithTimeout() async throws {
        let content = S3TestSupport.randomBytes(48 * 1024 * 1024)
        let server = server
        let frozen = Mutex(false)
        // Freeze the server once the client has taken 4 MiB of the body.
        let body = S3TestSupport.ChunkedBody(bytes: content, chunk: 1 << 20) { count in
            if count == 4, frozen.withLock({ let was = $0; $0 = true; return !was }) { server.signal(SIGSTOP) }
        }
        defer { server.signal(SIGCONT) }
        try await S3TestSupport.using(server.client(timeout: .seconds(2))) { s3 in
            let error = await S3TestSupport.s3Error {
                _ = try await s3.put("stalled-put", body: body, length: Int64(content.count), sha256: S3TestSupport.sha256Hex(content))
            }
            #expect(error?.code == .timeout, "got \(String(describing: error))")
            #expect(frozen.withLock { $0 })
        }
        server.signal(SIGCONT)
        // The server is fine afterwards and the stalled object was never stored.
        try await S3TestSupport.using(server.client()) { s3 in
            let info = try await s3.head("stalled-put")
            #expect(info == nil)
        }
    }

    /// The query parameters of a URL, decoded, order-insensitive.
    static func queryItems(_ url: String) -> [String: String] {
        let query = url.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        var items: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            items[name] = value
        }
        return items
    }

    /// Runs a command and returns its trimmed standard output; throws on a non-zero exit.
    func run(_ program: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        let directory = try TemporaryDirectory("cmd")
        defer { directory.cleanUp() }
        let out = directory.path + "/out", err = directory.path + "/err"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try process.run()
        process.waitUntilExit()
        let stdout = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        guard process.terminationStatus == 0 else {
            throw MotoServer.Failure(description: "\(program) failed: \((try? String(contentsOfFile: err, encoding: .utf8)) ?? "")")
        }
        return stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
