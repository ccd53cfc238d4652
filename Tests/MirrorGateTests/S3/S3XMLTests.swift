import Foundation
import Testing

@testable import MirrorGateS3

/// Parsing of the XML answers the client reads, in the shapes AWS documents and moto sends.
@Suite("S3 XML answers")
struct S3XMLTests {
    static func parse(_ xml: String, root: String, status: Int = 200) throws(S3Error) -> S3XMLElement {
        try S3XMLElement.parse(Data(xml.utf8), expectedRoot: root, status: status, requestID: nil)
    }

    @Test func initiateMultipartUpload() throws {
        let root = try Self.parse("""
            <?xml version="1.0" encoding="UTF-8"?>
            <InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Bucket>example-bucket</Bucket>
              <Key>mg/blobs/sha256/ab/abcd</Key>
              <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>
            </InitiateMultipartUploadResult>
            """, root: "InitiateMultipartUploadResult")
        let upload = try S3MultipartUpload(initiateResult: root, key: "blobs/sha256/ab/abcd")
        #expect(upload.uploadID == "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA")
        #expect(upload.key == "blobs/sha256/ab/abcd")
        let empty = try Self.parse("<InitiateMultipartUploadResult><UploadId></UploadId></InitiateMultipartUploadResult>", root: "InitiateMultipartUploadResult")
        #expect(throws: S3Error.self) { try S3MultipartUpload(initiateResult: empty, key: "k") }
    }

    @Test func listBucketResultWithContinuation() throws {
        let root = try Self.parse("""
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Name>bucket</Name>
              <Prefix>mg/blobs/</Prefix>
              <KeyCount>2</KeyCount>
              <MaxKeys>2</MaxKeys>
              <IsTruncated>true</IsTruncated>
              <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
              <Contents>
                <Key>mg/blobs/a b&amp;c</Key>
                <LastModified>2026-12-01T09:19:20.123Z</LastModified>
                <ETag>&quot;599bab3ed2c697f1d26842727561fd94&quot;</ETag>
                <Size>857</Size>
                <StorageClass>STANDARD</StorageClass>
              </Contents>
              <Contents>
                <Key>mg/blobs/b</Key>
                <LastModified>2026-12-01T09:19:21Z</LastModified>
                <ETag>"0123456789abcdef0123456789abcdef-4"</ETag>
                <Size>20971520</Size>
              </Contents>
            </ListBucketResult>
            """, root: "ListBucketResult")
        let listing = try S3ObjectListing(xml: root, keyPrefix: "mg/")
        #expect(listing.entries.map(\.key) == ["blobs/a b&c", "blobs/b"])
        #expect(listing.entries.map(\.size) == [857, 20_971_520])
        #expect(listing.entries.map(\.etag) == ["599bab3ed2c697f1d26842727561fd94", "0123456789abcdef0123456789abcdef-4"])
        #expect(abs(listing.entries[0].lastModified!.timeIntervalSince1970 - 1_796_116_760.123) < 0.000_5)
        #expect(listing.entries[1].lastModified == Date(timeIntervalSince1970: 1_796_116_761))
        #expect(listing.nextContinuationToken == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
    }

    @Test func lastPageAndEmptyListing() throws {
        let last = try S3ObjectListing(
            xml: Self.parse("<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>", root: "ListBucketResult"),
            keyPrefix: "")
        #expect(last.entries.isEmpty)
        #expect(last.nextContinuationToken == nil)
        let broken = try Self.parse("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", root: "ListBucketResult")
        #expect(throws: S3Error.self) { try S3ObjectListing(xml: broken, keyPrefix: "") }
        let outside = try Self.parse("<ListBucketResult><Contents><Key>other/x</Key><Size>1</Size></Contents></ListBucketResult>", root: "ListBucketResult")
        #expect(throws: S3Error.self) { try S3ObjectListing(xml: outside, keyPrefix: "mg/") }
    }

    @Test func listMultipartUploads() throws {
        let root = try Self.parse("""
            <?xml version="1.0" encoding="UTF-8"?>
            <ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Bucket>bucket</Bucket>
              <KeyMarker></KeyMarker>
              <UploadIdMarker></UploadIdMarker>
              <NextKeyMarker>mg/blobs/y</NextKeyMarker>
              <NextUploadIdMarker>upload-2</NextUploadIdMarker>
              <MaxUploads>2</MaxUploads>
              <IsTruncated>true</IsTruncated>
              <Upload>
                <Key>mg/blobs/x</Key>
                <UploadId>upload-1</UploadId>
                <Initiator><ID>arn:aws:iam::111122223333:user/mg</ID><DisplayName>mg</DisplayName></Initiator>
                <StorageClass>STANDARD</StorageClass>
                <Initiated>2026-12-01T08:00:00.000Z</Initiated>
              </Upload>
              <Upload>
                <Key>mg/blobs/y</Key>
                <UploadId>upload-2</UploadId>
                <Initiated>2026-12-01T08:30:00.000Z</Initiated>
              </Upload>
            </ListMultipartUploadsResult>
            """, root: "ListMultipartUploadsResult")
        let listing = try S3MultipartUploadListing(xml: root, keyPrefix: "mg/")
        #expect(listing.uploads.map(\.key) == ["blobs/x", "blobs/y"])
        #expect(listing.uploads.map(\.uploadID) == ["upload-1", "upload-2"])
        #expect(listing.uploads[0].initiated == Date(timeIntervalSince1970: 1_796_112_000))
        #expect(listing.nextKeyMarker == "blobs/y")
        #expect(listing.nextUploadIDMarker == "upload-2")
    }

    @Test func errorDocumentBecomesTheError() {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <Error>
              <Code>SignatureDoesNotMatch</Code>
              <Message>The request signature we calculated does not match the signature you provided.</Message>
              <RequestId>4442587FB7D0A2F9</RequestId>
            </Error>
            """
        #expect {
            try Self.parse(xml, root: "ListBucketResult", status: 403)
        } throws: { error in
            guard let error = error as? S3Error else { return false }
            return error.code == .forbidden && error.category == .misconfigured && error.s3Code == "SignatureDoesNotMatch"
                && error.status == 403 && error.requestID == "4442587FB7D0A2F9"
        }
        // CompleteMultipartUpload can answer 200 and then an <Error>: never a success.
        #expect {
            try Self.parse("<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>", root: "CompleteMultipartUploadResult")
        } throws: { error in
            (error as? S3Error)?.code == .serverError && (error as? S3Error)?.category == .unavailable
        }
    }

    @Test func malformedOrUnexpectedAnswers() {
        #expect(throws: S3Error.self) { try Self.parse("<ListBucketResult><Contents>", root: "ListBucketResult") }
        #expect(throws: S3Error.self) { try Self.parse("not xml at all", root: "ListBucketResult") }
        #expect(throws: S3Error.self) { try Self.parse("<Other/>", root: "ListBucketResult") }
        // An external entity must not be fetched or expanded.
        let xxe = """
            <?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
            <ListBucketResult><Prefix>&x;</Prefix></ListBucketResult>
            """
        let root = try? Self.parse(xxe, root: "ListBucketResult")
        #expect(root?.value("Prefix")?.contains("root:") != true)
    }

    @Test func completionDocumentListsPartsInOrder() throws {
        let document = S3CompletedPart.completionDocument([
            S3CompletedPart(number: 2, etag: "bbb"), S3CompletedPart(number: 1, etag: "a&a"),
        ])
        #expect(document == "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Part><PartNumber>1</PartNumber><ETag>\"a&amp;a\"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>\"bbb\"</ETag></Part></CompleteMultipartUpload>")
        // And it reads back as XML.
        let root = try S3XMLElement.parse(Data(document.utf8), what: "test")
        #expect(root.children("Part").map { $0.value("ETag") } == ["\"a&a\"", "\"bbb\""])
    }

    @Test func errorClassification() {
        func classify(_ status: Int, _ code: String?) -> (S3Error.Code, S3Error.Category) {
            let error = S3Error.from(status: status, s3Code: code, s3Message: nil, requestID: nil, operation: "op")
            return (error.code, error.category)
        }
        #expect(classify(404, "NoSuchKey") == (.notFound, .absent))
        #expect(classify(404, nil) == (.notFound, .absent))
        #expect(classify(404, "NoSuchUpload") == (.notFound, .absent))
        #expect(classify(404, "NoSuchBucket") == (.bucketNotFound, .misconfigured))
        #expect(classify(403, "SignatureDoesNotMatch") == (.forbidden, .misconfigured))
        #expect(classify(403, "InvalidAccessKeyId") == (.forbidden, .misconfigured))
        #expect(classify(403, "AccessDenied") == (.forbidden, .misconfigured))
        #expect(classify(403, nil) == (.forbidden, .misconfigured))
        #expect(classify(400, "AuthorizationHeaderMalformed") == (.wrongEndpoint, .misconfigured))
        #expect(classify(301, "PermanentRedirect") == (.wrongEndpoint, .misconfigured))
        #expect(classify(412, "PreconditionFailed") == (.preconditionFailed, .alreadyExists))
        #expect(classify(416, "InvalidRange") == (.rangeNotSatisfiable, .rejected))
        #expect(classify(400, "EntityTooSmall") == (.badRequest, .rejected))
        #expect(classify(503, "SlowDown") == (.serverError, .unavailable))
        #expect(classify(500, nil) == (.serverError, .unavailable))
        #expect(classify(409, "ConditionalRequestConflict") == (.serverError, .unavailable))
        #expect(classify(429, nil) == (.serverError, .unavailable))
    }

    @Test func iso8601Times() {
        #expect(UTCCalendar.parseISO8601("1970-01-01T00:00:00Z") == 0)
        #expect(UTCCalendar.parseISO8601("2000-02-29T12:00:00.500Z") == 951_825_600.5)
        #expect(UTCCalendar.parseISO8601("2026-12-01T09:19:20+01:00") == nil)
        #expect(UTCCalendar.parseISO8601("2026-13-01T09:19:20Z") == nil)
        #expect(UTCCalendar.parseISO8601("yesterday") == nil)
    }
}
