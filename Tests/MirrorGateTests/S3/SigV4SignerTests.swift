import Foundation
import MirrorGateS3
import NIOCore
import Testing

/// The signer against the worked examples AWS publishes (replicas.md §3.3): the S3 API
/// Reference's header-auth, query-auth and streaming examples, and `get-vanilla` of the
/// aws-sig-v4-test-suite. Each step (canonical request, string to sign, signature) is compared,
/// not just the final signature, so a failure says where the two disagree.
@Suite("SigV4Signer")
struct SigV4SignerTests {
    /// The S3 examples' credentials, date and region.
    static let s3 = SigV4Signer(
        accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")
    static let may24 = SigV4Timestamp(amzDate: "20130524T000000Z")!
    static let empty = SigV4Signer.emptyPayloadHash

    @Test func timestampFormatsAndParses() throws {
        #expect(Self.may24.unixSeconds == 1_369_353_600)
        #expect(SigV4Timestamp(unixSeconds: 1_369_353_600).amzDate == "20130524T000000Z")
        #expect(Self.may24.day == "20130524")
        #expect(SigV4Timestamp(unixSeconds: 1_440_938_160).amzDate == "20150830T123600Z")
        // Leap day, end of year, before 1970.
        #expect(SigV4Timestamp(unixSeconds: 951_825_600).amzDate == "20000229T120000Z")
        #expect(SigV4Timestamp(unixSeconds: 1_798_761_599).amzDate == "20261231T235959Z")
        #expect(SigV4Timestamp(unixSeconds: -1).amzDate == "19691231T235959Z")
        #expect(SigV4Timestamp(Date(timeIntervalSince1970: 1_369_353_600.9)) == Self.may24)
        #expect(SigV4Timestamp(amzDate: "2013-05-24T00:00:00Z") == nil)
        #expect(SigV4Timestamp(amzDate: "20131324T000000Z") == nil)
    }

    @Test func getObjectWithRange() {
        let signature = Self.s3.sign(
            .init(method: "GET", path: "/test.txt", headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
                ("x-amz-content-sha256", Self.empty), ("x-amz-date", "20130524T000000Z"),
            ]), payloadHash: Self.empty, timestamp: Self.may24)
        #expect(signature.canonicalRequest == """
            GET
            /test.txt

            host:examplebucket.s3.amazonaws.com
            range:bytes=0-9
            x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            x-amz-date:20130524T000000Z

            host;range;x-amz-content-sha256;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(signature.stringToSign == """
            AWS4-HMAC-SHA256
            20130524T000000Z
            20130524/us-east-1/s3/aws4_request
            7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972
            """)
        #expect(signature.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(signature.authorization == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func putObjectWithDollarInKey() {
        let body = ByteBuffer(string: "Welcome to Amazon S3.")
        let hash = SigV4Signer.sha256Hex(body)
        #expect(hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        let path = "/" + S3URIEncoding.path("test$file.text")
        #expect(path == "/test%24file.text")
        let signature = Self.s3.sign(
            .init(method: "PUT", path: path, headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-date", "20130524T000000Z"), ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                ("x-amz-content-sha256", hash),
            ]), payloadHash: hash, timestamp: Self.may24)
        #expect(signature.canonicalRequest == """
            PUT
            /test%24file.text

            date:Fri, 24 May 2013 00:00:00 GMT
            host:examplebucket.s3.amazonaws.com
            x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072
            x-amz-date:20130524T000000Z
            x-amz-storage-class:REDUCED_REDUNDANCY

            date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class
            44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072
            """)
        #expect(signature.stringToSign.hasSuffix("\n9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d"))
        #expect(signature.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test func getBucketLifecycle() {
        let signature = Self.s3.sign(
            .init(method: "GET", path: "/", query: [("lifecycle", "")], headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("x-amz-date", "20130524T000000Z"),
                ("x-amz-content-sha256", Self.empty),
            ]), payloadHash: Self.empty, timestamp: Self.may24)
        #expect(signature.canonicalRequest == """
            GET
            /
            lifecycle=
            host:examplebucket.s3.amazonaws.com
            x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            x-amz-date:20130524T000000Z

            host;x-amz-content-sha256;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(signature.stringToSign.hasSuffix("\n9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca"))
        #expect(signature.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    }

    @Test func listObjectsQueryIsSorted() {
        // Given out of order: the canonical query sorts by name.
        let signature = Self.s3.sign(
            .init(method: "GET", path: "/", query: [("prefix", "J"), ("max-keys", "2")], headers: [
                ("Host", "examplebucket.s3.amazonaws.com"), ("x-amz-date", "20130524T000000Z"),
                ("x-amz-content-sha256", Self.empty),
            ]), payloadHash: Self.empty, timestamp: Self.may24)
        #expect(signature.canonicalRequest.split(separator: "\n", omittingEmptySubsequences: false)[2] == "max-keys=2&prefix=J")
        #expect(signature.stringToSign.hasSuffix("\ndf57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7"))
        #expect(signature.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test func presignedGET() {
        let presigned = Self.s3.presign(
            method: "GET", path: "/test.txt", host: "examplebucket.s3.amazonaws.com", expires: 86400, timestamp: Self.may24)
        #expect(presigned.canonicalRequest == """
            GET
            /test.txt
            X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host
            host:examplebucket.s3.amazonaws.com

            host
            UNSIGNED-PAYLOAD
            """)
        #expect(presigned.stringToSign == """
            AWS4-HMAC-SHA256
            20130524T000000Z
            20130524/us-east-1/s3/aws4_request
            3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04
            """)
        #expect(presigned.signature == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        #expect(presigned.query == "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    }

    @Test func streamingSeedAndChunkSignatures() {
        let encodedLength = SigV4ChunkSigner.encodedLength(decodedLength: 66_560, chunkSize: 65_536)
        #expect(encodedLength == 66_824)
        let seed = Self.s3.sign(
            .init(method: "PUT", path: "/examplebucket/chunkObject.txt", headers: [
                ("Host", "s3.amazonaws.com"), ("x-amz-date", "20130524T000000Z"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"), ("x-amz-content-sha256", SigV4Signer.streamingPayload),
                ("Content-Encoding", "aws-chunked"), ("x-amz-decoded-content-length", "66560"),
                ("Content-Length", String(encodedLength)),
            ]), payloadHash: SigV4Signer.streamingPayload, timestamp: Self.may24)
        #expect(seed.canonicalRequest == """
            PUT
            /examplebucket/chunkObject.txt

            content-encoding:aws-chunked
            content-length:66824
            host:s3.amazonaws.com
            x-amz-content-sha256:STREAMING-AWS4-HMAC-SHA256-PAYLOAD
            x-amz-date:20130524T000000Z
            x-amz-decoded-content-length:66560
            x-amz-storage-class:REDUCED_REDUNDANCY

            content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class
            STREAMING-AWS4-HMAC-SHA256-PAYLOAD
            """)
        #expect(seed.stringToSign.hasSuffix("\ncee3fed04b70f867d036f722359b0b1f2f0e5dc0efadbc082b76c4c60e316455"))
        #expect(seed.signature == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")

        var chunks = SigV4ChunkSigner(signer: Self.s3, timestamp: Self.may24, seedSignature: seed.signature)
        let first = ByteBuffer(repeating: UInt8(ascii: "a"), count: 65_536)
        #expect(chunks.stringToSign(chunkHash: SigV4Signer.sha256Hex(first)) == """
            AWS4-HMAC-SHA256-PAYLOAD
            20130524T000000Z
            20130524/us-east-1/s3/aws4_request
            4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            bf718b6f653bebc184e1479f1935b8da974d701b893afcf49e701f3e2f9f9c5a
            """)
        #expect(chunks.sign(chunk: first) == "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648")
        #expect(chunks.sign(chunk: ByteBuffer(repeating: UInt8(ascii: "a"), count: 1024)) == "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497")
        #expect(chunks.sign(chunk: ByteBuffer()) == "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9")
        #expect(SigV4ChunkSigner.chunkHeader(size: 65_536, signature: "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648")
            == "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n")
    }

    @Test func encodedLengthEdgeCases() {
        let empty = Int64("0;chunk-signature=".utf8.count + 64 + 4)
        #expect(SigV4ChunkSigner.encodedLength(decodedLength: 0, chunkSize: 65_536) == empty)
        // Exactly one full chunk: no short chunk, then the final one.
        #expect(SigV4ChunkSigner.encodedLength(decodedLength: 65_536, chunkSize: 65_536) == 5 + 17 + 64 + 2 + 65_536 + 2 + empty)
        #expect(SigV4ChunkSigner.encodedLength(decodedLength: 1, chunkSize: 65_536) == 1 + 17 + 64 + 2 + 1 + 2 + empty)
    }

    /// aws-sig-v4-test-suite `get-vanilla` (generic service, so `x-amz-content-sha256` is not sent).
    @Test func awsTestSuiteGetVanilla() {
        let signer = SigV4Signer(
            accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "us-east-1",
            service: "service")
        let signature = signer.sign(
            .init(method: "GET", path: "/", headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")]),
            payloadHash: Self.empty, timestamp: SigV4Timestamp(amzDate: "20150830T123600Z")!)
        #expect(signature.canonicalRequest == """
            GET
            /

            host:example.amazonaws.com
            x-amz-date:20150830T123600Z

            host;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(signature.stringToSign == """
            AWS4-HMAC-SHA256
            20150830T123600Z
            20150830/us-east-1/service/aws4_request
            bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63
            """)
        #expect(signature.authorization == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    @Test func headerValuesAreTrimmedAndRepeatsJoined() {
        let signature = Self.s3.sign(
            .init(method: "GET", path: "/", headers: [
                ("Host", "h"), ("X-Amz-Meta-A", "  two   spaces  "), ("x-amz-meta-a", "second"), ("x-amz-date", "20130524T000000Z"),
            ]), payloadHash: Self.empty, timestamp: Self.may24)
        #expect(signature.canonicalRequest.contains("\nx-amz-meta-a:two spaces,second\n"))
        #expect(signature.signedHeaders == "host;x-amz-date;x-amz-meta-a")
    }

    @Test func signingKeyCacheFollowsTheDay() {
        // Same request on two days: the cached key of the first day must not sign the second.
        let request = SigV4Signer.Request(method: "GET", path: "/", headers: [("host", "h")])
        let day1 = Self.s3.sign(request, payloadHash: Self.empty, timestamp: SigV4Timestamp(unixSeconds: 1_369_353_600))
        let day2 = Self.s3.sign(request, payloadHash: Self.empty, timestamp: SigV4Timestamp(unixSeconds: 1_369_353_600 + 86_400))
        let day1Again = Self.s3.sign(request, payloadHash: Self.empty, timestamp: SigV4Timestamp(unixSeconds: 1_369_353_600))
        let fresh = SigV4Signer(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1")
        #expect(day1.signature == day1Again.signature)
        #expect(day2.signature == fresh.sign(request, payloadHash: Self.empty, timestamp: SigV4Timestamp(unixSeconds: 1_369_353_600 + 86_400)).signature)
        #expect(day1.signature != day2.signature)
        #expect(day2.credential.contains("/20130525/"))
    }

    @Test func descriptionHidesTheSecret() {
        #expect(!"\(Self.s3)".contains("EXAMPLEKEY"))
        #expect("\(Self.s3)".contains("AKIAIOSFODNN7EXAMPLE"))
    }
}
