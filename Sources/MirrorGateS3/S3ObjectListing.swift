import Foundation

/// One page of ListObjectsV2 (`ListBucketResult`).
public struct S3ObjectListing: Sendable, Equatable {
    /// One listed object.
    public struct Entry: Sendable, Equatable {
        /// The key relative to the configured prefix (what ``S3Client`` methods take).
        public let key: String
        public let size: Int64
        /// Without quotes.
        public let etag: String?
        public let lastModified: Date?
    }

    public let entries: [Entry]
    /// Pass to the next ``S3Client/list(prefix:continuationToken:maxKeys:)`` call; `nil` on the last page.
    public let nextContinuationToken: String?

    /// Parses a `ListBucketResult`, stripping `keyPrefix` (the configured prefix) from the keys.
    init(xml root: S3XMLElement, keyPrefix: String) throws(S3Error) {
        var entries: [Entry] = []
        for item in root.children("Contents") {
            guard let fullKey = item.value("Key"), let size = item.value("Size").flatMap({ Int64($0) }) else {
                throw S3Error(.invalidResponse, "ListBucketResult: <Contents> without <Key> or <Size>")
            }
            guard fullKey.hasPrefix(keyPrefix) else {
                throw S3Error(.invalidResponse, "ListBucketResult: key \"\(fullKey)\" is outside the prefix \"\(keyPrefix)\"")
            }
            entries.append(
                Entry(
                    key: String(fullKey.dropFirst(keyPrefix.count)), size: size,
                    etag: item.value("ETag").map(S3ObjectListing.unquote),
                    lastModified: item.value("LastModified").flatMap(UTCCalendar.parseISO8601).map(Date.init(timeIntervalSince1970:))
                ))
        }
        let truncated = root.value("IsTruncated") == "true"
        let token = root.value("NextContinuationToken").flatMap { $0.isEmpty ? nil : $0 }
        if truncated, token == nil {
            throw S3Error(.invalidResponse, "ListBucketResult: truncated without <NextContinuationToken>")
        }
        self.entries = entries
        self.nextContinuationToken = truncated ? token : nil
    }

    static func unquote(_ etag: String) -> String {
        var tag = Substring(etag)
        if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
        if tag.count >= 2, tag.first == "\"", tag.last == "\"" { tag = tag.dropFirst().dropLast() }
        return String(tag)
    }
}
