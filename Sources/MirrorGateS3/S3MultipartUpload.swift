import Foundation

/// A multipart upload in progress (from CreateMultipartUpload or ListMultipartUploads).
public struct S3MultipartUpload: Sendable, Equatable {
    /// S3's limits: parts of 5 MiB to 5 GiB except the last, numbered 1 to 10,000.
    public static let minimumPartSize: Int64 = 5 * 1024 * 1024
    public static let maximumPartSize: Int64 = 5 * 1024 * 1024 * 1024
    public static let maximumPartCount = 10_000

    /// The key relative to the configured prefix.
    public let key: String
    public let uploadID: String
    /// When the upload was created (only from ListMultipartUploads).
    public let initiated: Date?

    public init(key: String, uploadID: String, initiated: Date? = nil) {
        self.key = key
        self.uploadID = uploadID
        self.initiated = initiated
    }

    /// Parses `InitiateMultipartUploadResult`.
    init(initiateResult root: S3XMLElement, key: String) throws(S3Error) {
        guard let uploadID = root.value("UploadId"), !uploadID.isEmpty else {
            throw S3Error(.invalidResponse, "InitiateMultipartUploadResult without <UploadId>")
        }
        self.init(key: key, uploadID: uploadID)
    }
}

/// An uploaded part, as CompleteMultipartUpload needs it.
public struct S3CompletedPart: Sendable, Equatable {
    public let number: Int
    /// Without quotes.
    public let etag: String

    public init(number: Int, etag: String) {
        self.number = number
        self.etag = etag
    }

    /// The `CompleteMultipartUpload` request document for `parts` (sorted by number).
    static func completionDocument(_ parts: [S3CompletedPart]) -> String {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts.sorted(by: { $0.number < $1.number }) {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\"\(escape(part.etag))\"</ETag></Part>"
        }
        return xml + "</CompleteMultipartUpload>"
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// One page of ListMultipartUploads (`ListMultipartUploadsResult`).
public struct S3MultipartUploadListing: Sendable, Equatable {
    public let uploads: [S3MultipartUpload]
    /// Pass both to the next ``S3Client/listMultipartUploads(prefix:keyMarker:uploadIDMarker:)`` call;
    /// `nil` on the last page.
    public let nextKeyMarker: String?
    public let nextUploadIDMarker: String?

    init(xml root: S3XMLElement, keyPrefix: String) throws(S3Error) {
        var uploads: [S3MultipartUpload] = []
        for item in root.children("Upload") {
            guard let fullKey = item.value("Key"), let id = item.value("UploadId") else {
                throw S3Error(.invalidResponse, "ListMultipartUploadsResult: <Upload> without <Key> or <UploadId>")
            }
            guard fullKey.hasPrefix(keyPrefix) else {
                throw S3Error(.invalidResponse, "ListMultipartUploadsResult: key \"\(fullKey)\" is outside the prefix \"\(keyPrefix)\"")
            }
            uploads.append(
                S3MultipartUpload(
                    key: String(fullKey.dropFirst(keyPrefix.count)), uploadID: id,
                    initiated: item.value("Initiated").flatMap(UTCCalendar.parseISO8601).map(Date.init(timeIntervalSince1970:))
                ))
        }
        self.uploads = uploads
        if root.value("IsTruncated") == "true" {
            guard let key = root.value("NextKeyMarker"), !key.isEmpty else {
                throw S3Error(.invalidResponse, "ListMultipartUploadsResult: truncated without <NextKeyMarker>")
            }
            // Relative, like the keys: the client adds the prefix back when it is passed in.
            nextKeyMarker = key.hasPrefix(keyPrefix) ? String(key.dropFirst(keyPrefix.count)) : key
            nextUploadIDMarker = root.value("NextUploadIdMarker")
        } else {
            nextKeyMarker = nil
            nextUploadIDMarker = nil
        }
    }
}
