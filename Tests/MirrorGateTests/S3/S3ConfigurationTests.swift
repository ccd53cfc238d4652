import Foundation
import Logging
import NIOCore
import Testing

@testable import MirrorGateS3

/// Configuration validation, key encoding and request addressing, without a network.
@Suite("S3 configuration and keys")
struct S3ConfigurationTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    static func config(
        endpoint: String = "https://s3.eu-west-1.amazonaws.com", region: String = "eu-west-1", bucket: String = "mirrorgate-cache",
        prefix: String = "", addressing: S3Configuration.Addressing = .virtualHost, accessKeyID: String = "AKIAEXAMPLE",
        secret: String = "s3cr3t/Key+value"
    ) -> S3Configuration {
        S3Configuration(
            endpoint: endpoint, region: region, bucket: bucket, prefix: prefix, addressing: addressing, accessKeyID: accessKeyID,
            secretAccessKey: secret)
    }

    /// Runs `body` with a client for `config` and shuts it down afterwards.
    static func withClient(_ config: S3Configuration, _ body: (S3Client) async throws -> Void) async throws {
        let client = try S3Client(configuration: config, logger: logger)
        do {
            try await body(client)
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    /// The message of the validation error, or nil when valid.
    static func problem(_ config: S3Configuration) -> String? {
        do {
            _ = try config.validate()
            return nil
        } catch {
            #expect(error.code == .invalidConfiguration)
            #expect(error.category == .misconfigured)
            return error.message
        }
    }

    @Test func validEndpoints() throws {
        #expect(try Self.config().validate() == .init(scheme: "https", host: "s3.eu-west-1.amazonaws.com", port: nil))
        #expect(try Self.config(endpoint: "http://127.0.0.1:9000", addressing: .pathStyle).validate().authority == "127.0.0.1:9000")
        #expect(try Self.config(endpoint: "HTTPS://S3.Example.COM:443/").validate().authority == "s3.example.com")
        #expect(try Self.config(endpoint: "http://minio:80").validate().authority == "minio")
        #expect(try Self.config(endpoint: "http://minio:9000").validate().isTLS == false)
        #expect(try Self.config(endpoint: "http://[::1]:9000", addressing: .pathStyle).validate().authority == "[::1]:9000")
    }

    @Test(arguments: [
        ("ftp://s3.example.com", "endpoint:"), ("s3.example.com", "endpoint:"), ("https://", "endpoint:"),
        ("https://s3.example.com/bucket", "endpoint:"), ("https://s3.example.com?x=1", "endpoint:"),
        ("https://user:pw@s3.example.com", "endpoint:"),
    ])
    func badEndpoints(endpoint: String, key: String) {
        #expect(Self.problem(Self.config(endpoint: endpoint))?.hasPrefix(key) == true)
    }

    @Test func eachFieldIsNamed() {
        #expect(Self.problem(Self.config(region: ""))?.hasPrefix("region:") == true)
        #expect(Self.problem(Self.config(region: "EU West"))?.hasPrefix("region:") == true)
        #expect(Self.problem(Self.config(bucket: "ab"))?.hasPrefix("bucket:") == true)
        #expect(Self.problem(Self.config(bucket: "My_Bucket"))?.hasPrefix("bucket:") == true)
        #expect(Self.problem(Self.config(bucket: "-bucket"))?.hasPrefix("bucket:") == true)
        #expect(Self.problem(Self.config(bucket: "a..b"))?.hasPrefix("bucket:") == true)
        #expect(Self.problem(Self.config(bucket: String(repeating: "a", count: 64)))?.hasPrefix("bucket:") == true)
        #expect(Self.problem(Self.config(prefix: "/mirrorgate/"))?.hasPrefix("prefix:") == true)
        #expect(Self.problem(Self.config(accessKeyID: ""))?.hasPrefix("access_key_id:") == true)
        #expect(Self.problem(Self.config(secret: ""))?.hasPrefix("secret_access_key:") == true)
        #expect(Self.problem(Self.config(secret: "abc\n"))?.contains("trailing newline") == true)
        // A dotted bucket cannot be addressed virtual-host style over https (certificate).
        #expect(Self.problem(Self.config(bucket: "my.bucket"))?.hasPrefix("path_style:") == true)
        #expect(Self.problem(Self.config(bucket: "my.bucket", addressing: .pathStyle)) == nil)
        #expect(Self.problem(Self.config(prefix: "mirrorgate/")) == nil)
        // Virtual-host style needs a name to put the bucket in front of.
        #expect(Self.problem(Self.config(endpoint: "http://127.0.0.1:9000"))?.hasPrefix("path_style:") == true)
        #expect(Self.problem(Self.config(endpoint: "http://[::1]:9000"))?.hasPrefix("path_style:") == true)
        #expect(Self.problem(Self.config(endpoint: "http://127.0.0.1:9000", addressing: .pathStyle)) == nil)
        #expect(Self.problem(Self.config(endpoint: "http://[::1]:9000", addressing: .pathStyle)) == nil)
    }

    @Test func descriptionNeverShowsTheSecret() async throws {
        let config = Self.config(secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        #expect(!config.description.contains("EXAMPLEKEY"))
        #expect(config.description.contains("<redacted>"))
        try await Self.withClient(config) { client in
            #expect(!"\(client.signer)".contains("EXAMPLEKEY"))
        }
    }

    @Test func keyEncoding() {
        #expect(S3URIEncoding.path("blobs/sha256/ab/abc-_.~") == "blobs/sha256/ab/abc-_.~")
        #expect(S3URIEncoding.path("a b+c$d&e=f?g#h%i") == "a%20b%2Bc%24d%26e%3Df%3Fg%23h%25i")
        #expect(S3URIEncoding.path("ünï/€") == "%C3%BCn%C3%AF/%E2%82%AC")
        // No normalisation: these are distinct S3 keys.
        #expect(S3URIEncoding.path("a/./b//c/../d") == "a/./b//c/../d")
        // No double encoding: an already-encoded looking key is encoded once, as the literal it is.
        #expect(S3URIEncoding.path("x%2Fy") == "x%252Fy")
        #expect(S3URIEncoding.queryComponent("mg/blobs/") == "mg%2Fblobs%2F")
        #expect(S3URIEncoding.queryComponent("1ueGcx+Tr/XY=") == "1ueGcx%2BTr%2FXY%3D")
        #expect(S3URIEncoding.canonicalQuery([("uploads", ""), ("prefix", "a b")]) == "prefix=a%20b&uploads=")
        #expect(S3URIEncoding.canonicalQuery([("b", "2"), ("a", "2"), ("a", "1")]) == "a=1&a=2&b=2")
    }

    @Test func addressing() async throws {
        try await Self.withClient(Self.config(prefix: "mg/")) { virtual in
            let object = try virtual.target(key: "blobs/a b")
            let bucket = try virtual.target(key: nil)
            #expect(object.host == "mirrorgate-cache.s3.eu-west-1.amazonaws.com")
            #expect(object.path == "/mg/blobs/a%20b")
            #expect(bucket.host == "mirrorgate-cache.s3.eu-west-1.amazonaws.com")
            #expect(bucket.path == "/")
        }
        try await Self.withClient(Self.config(endpoint: "http://127.0.0.1:9000", prefix: "mg/", addressing: .pathStyle)) { path in
            let object = try path.target(key: "blobs/a b")
            let bucket = try path.target(key: nil)
            #expect(object.host == "127.0.0.1:9000")
            #expect(object.path == "/mirrorgate-cache/mg/blobs/a%20b")
            #expect(bucket.host == "127.0.0.1:9000")
            #expect(bucket.path == "/mirrorgate-cache")
            #expect(throws: S3Error.self) { try path.target(key: "") }
            #expect(throws: S3Error.self) { try path.target(key: String(repeating: "k", count: 1022)) }
        }
    }

    @Test func signedRequestCarriesWhatItSigned() async throws {
        try await Self.withClient(Self.config(endpoint: "http://127.0.0.1:9000", prefix: "mg/", addressing: .pathStyle)) { client in
            let (request, signature, timestamp) = try client.signedRequest(
                .GET, key: nil, query: [("prefix", "mg/x y"), ("list-type", "2")], headers: [("range", "bytes=0-1")],
                payloadHash: SigV4Signer.emptyPayloadHash)
            #expect(request.url == "http://127.0.0.1:9000/mirrorgate-cache?list-type=2&prefix=mg%2Fx%20y")
            #expect(request.headers.first(name: "host") == "127.0.0.1:9000")
            #expect(request.headers.first(name: "x-amz-date") == timestamp.amzDate)
            #expect(request.headers.first(name: "x-amz-content-sha256") == SigV4Signer.emptyPayloadHash)
            #expect(request.headers.first(name: "authorization") == signature.authorization)
            #expect(signature.signedHeaders == "host;range;x-amz-content-sha256;x-amz-date")
            #expect(signature.canonicalRequest.hasPrefix("GET\n/mirrorgate-cache\nlist-type=2&prefix=mg%2Fx%20y\n"))
        }
    }

    @Test func presignedURLShape() async throws {
        try await Self.withClient(Self.config(endpoint: "http://127.0.0.1:9000", region: "us-east-1", addressing: .pathStyle)) { client in
            let url = try client.presignedGET("blobs/a b", expires: .seconds(300), at: Date(timeIntervalSince1970: 1_369_353_600))
            #expect(url.hasPrefix("http://127.0.0.1:9000/mirrorgate-cache/blobs/a%20b?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature="))
            #expect(throws: S3Error.self) { try client.presignedGET("k", expires: .seconds(604_801)) }
            #expect(throws: S3Error.self) { try client.presignedGET("k", expires: .zero) }
        }
    }

    @Test func contentRangeAndChecksums() throws {
        #expect(S3Client.contentRange("bytes 100-199/20971520")! == (100...199, 20_971_520))
        #expect(S3Client.contentRange("bytes 0-0/1")! == (0...0, 1))
        #expect(S3Client.contentRange("bytes */100") == nil)
        #expect(S3Client.contentRange("bytes 5-4/10") == nil)
        #expect(S3Client.contentRange("bytes 0-10/10") == nil)
        // base64 of the SHA-256 of "Welcome to Amazon S3.", as x-amz-checksum-sha256 carries it.
        #expect(try S3Client.base64(hex: "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072", operation: "t")
            == "RM591nyVng01JP+sF3Hfu6h9K2tLTpnkIDSouAP4sHI=")
        #expect(throws: S3Error.self) { try S3Client.base64(hex: "44CE", operation: "t") }
        #expect(throws: S3Error.self) { try S3Client.base64(hex: String(repeating: "g", count: 64), operation: "t") }
        #expect(S3ByteRange.from(first: 100, last: 199).headerValue == "bytes=100-199")
        #expect(S3ByteRange.from(first: 5, last: nil).headerValue == "bytes=5-")
        #expect(S3ByteRange.suffix(length: 10).headerValue == "bytes=-10")
        #expect(!S3ByteRange.from(first: 5, last: 4).isValid)
    }
}
