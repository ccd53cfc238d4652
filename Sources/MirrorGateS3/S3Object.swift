/// What HEAD (and GET) report about a stored object.
public struct S3ObjectInfo: Sendable, Equatable {
    /// The whole object's size in bytes.
    public let size: Int64
    /// The ETag without its quotes (an MD5 for a single PUT, `<md5>-<parts>` after multipart).
    public let etag: String?
    public let contentType: String?
}

/// A range of an object to GET, as in `Range: bytes=...`.
public enum S3ByteRange: Sendable, Equatable {
    /// `bytes=first-` or `bytes=first-last` (inclusive).
    case from(first: Int64, last: Int64?)
    /// `bytes=-length`: the final `length` bytes.
    case suffix(length: Int64)

    /// The header value.
    public var headerValue: String {
        switch self {
        case .from(let first, let last): "bytes=\(first)-\(last.map(String.init) ?? "")"
        case .suffix(let length): "bytes=-\(length)"
        }
    }

    var isValid: Bool {
        switch self {
        case .from(let first, let last): first >= 0 && (last.map { $0 >= first } ?? true)
        case .suffix(let length): length > 0
        }
    }
}

/// An object being read: its metadata and its body, which streams from the store as it is
/// consumed (see ``S3ObjectBody``).
public struct S3Object: Sendable {
    public let info: S3ObjectInfo
    /// The inclusive byte positions the body holds: the requested range as the store resolved it
    /// (from `Content-Range`), or the whole object when no range was asked for or the store
    /// ignored it (a 200 instead of a 206: check this before serving a range). `nil` for an empty
    /// object.
    public let range: ClosedRange<Int64>?
    /// Bytes the body will carry (`Content-Length`).
    public let contentLength: Int64
    public let body: S3ObjectBody
}

/// The outcome of a write that may be conditional.
public enum S3PutOutcome: Sendable, Equatable {
    /// Stored; the ETag without quotes.
    case stored(etag: String?)
    /// `If-None-Match: *` was sent and the key already existed (HTTP 412). Nothing was written.
    case alreadyExists
}
