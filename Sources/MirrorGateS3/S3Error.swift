#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import AsyncHTTPClient
import NIOCore

/// Every failure of the S3 client: what kind it is, a message for logs, and, when the store
/// answered, its error code and HTTP status.
///
/// ``category`` is the decision a caller makes: an object that is ``Category/absent`` is a cache
/// miss; ``Category/misconfigured`` (wrong secret, no such bucket, wrong region) must never be
/// mistaken for one; ``Category/unavailable`` (5xx, SlowDown, timeouts, refused connections) is
/// worth retrying later.
public struct S3Error: Error, Sendable, CustomStringConvertible {
    /// What failed.
    public enum Code: String, Sendable, Hashable {
        /// 404 for an object or upload (`NoSuchKey`, `NoSuchUpload`, a HEAD 404).
        case notFound
        /// 404 `NoSuchBucket`: the configured bucket does not exist.
        case bucketNotFound
        /// 403: `SignatureDoesNotMatch`, `InvalidAccessKeyId`, `AccessDenied`, `RequestTimeTooSkewed`, ...
        case forbidden
        /// 412: a conditional write (`If-None-Match: *`) found the key already there.
        case preconditionFailed
        /// 416: the range starts past the end of the object.
        case rangeNotSatisfiable
        /// 301/307 or `AuthorizationHeaderMalformed`/`PermanentRedirect`: the bucket lives in
        /// another region or behind another endpoint.
        case wrongEndpoint
        /// Any other 4xx: the store refused the request as built.
        case badRequest
        /// 5xx, including 503 `SlowDown`, and 409 `ConditionalRequestConflict` (retryable).
        case serverError
        /// The connection failed: refused, reset, TLS, DNS.
        case transport
        /// No response head within the request timeout, or a body that stalled that long.
        case timeout
        /// A 2xx answer the client could not make sense of (bad XML, a short body).
        case invalidResponse
        /// The configuration cannot work (reported before any request).
        case invalidConfiguration
        /// The caller passed something S3 cannot take (a part number of 0, an empty key, ...).
        case invalidArgument
        /// A local file to upload could not be read.
        case localFile
    }

    /// The decision a caller makes from an error.
    public enum Category: String, Sendable, Hashable {
        /// The object (or upload) is not there: a miss, not a failure.
        case absent
        /// A conditional write found the key already written.
        case alreadyExists
        /// Credentials, bucket, region or endpoint are wrong; retrying will not help.
        case misconfigured
        /// The request itself was wrong (a bug or bad input); retrying will not help.
        case rejected
        /// The store is unreachable, overloaded or failing; retry later.
        case unavailable
    }

    public let code: Code
    /// A sentence for logs (never contains the secret).
    public let message: String
    /// The `<Code>` of S3's error document, e.g. `SignatureDoesNotMatch`.
    public let s3Code: String?
    /// The HTTP status, when the store answered.
    public let status: Int?
    /// `x-amz-request-id`, for the store's operators.
    public let requestID: String?

    public init(_ code: Code, _ message: String, s3Code: String? = nil, status: Int? = nil, requestID: String? = nil) {
        self.code = code
        self.message = message
        self.s3Code = s3Code
        self.status = status
        self.requestID = requestID
    }

    public var category: Category {
        switch code {
        case .notFound: .absent
        case .preconditionFailed: .alreadyExists
        case .bucketNotFound, .forbidden, .wrongEndpoint, .invalidConfiguration: .misconfigured
        case .badRequest, .rangeNotSatisfiable, .invalidArgument, .localFile: .rejected
        case .serverError, .transport, .timeout, .invalidResponse: .unavailable
        }
    }

    public var description: String {
        var text = "S3 \(code.rawValue)"
        if let status { text += " (\(status)\(s3Code.map { " \($0)" } ?? ""))" }
        text += ": \(message)"
        if let requestID { text += " [request \(requestID)]" }
        return text
    }

    /// The error for a non-2xx answer, from its status and (if it had one) S3's error document.
    static func from(status: Int, s3Code: String?, s3Message: String?, requestID: String?, operation: String) -> S3Error {
        let detail = s3Message.map { "\(operation): \($0)" } ?? "\(operation): HTTP \(status)"
        let code: Code
        switch (status, s3Code) {
        case (_, "NoSuchBucket"): code = .bucketNotFound
        case (_, "NoSuchKey"), (_, "NoSuchUpload"): code = .notFound
        case (_, "AuthorizationHeaderMalformed"), (_, "PermanentRedirect"), (_, "TemporaryRedirect"),
            (_, "IllegalLocationConstraintException"), (301, _), (307, _):
            code = .wrongEndpoint
        case (_, "SignatureDoesNotMatch"), (_, "InvalidAccessKeyId"), (_, "AccessDenied"), (_, "RequestTimeTooSkewed"),
            (_, "ExpiredToken"), (_, "InvalidToken"), (403, _):
            code = .forbidden
        case (_, "SlowDown"), (_, "ConditionalRequestConflict"), (_, "InternalError"), (_, "ServiceUnavailable"):
            code = .serverError
        case (404, _): code = .notFound
        case (412, _): code = .preconditionFailed
        case (416, _): code = .rangeNotSatisfiable
        case (429, _), (500...599, _): code = .serverError
        default: code = .badRequest
        }
        return S3Error(code, detail, s3Code: s3Code, status: status, requestID: requestID)
    }
}

extension S3Error {
    /// The error for a request that got no answer: refused or reset connections, TLS and DNS
    /// failures (``Code/transport``), and timeouts (``Code/timeout``).
    static func transport(_ error: any Error, operation: String) -> S3Error {
        if let error = error as? S3Error { return error }
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout, .deadlineExceeded, .readTimeout:
                return S3Error(.timeout, "\(operation): \(error)")
            default:
                return S3Error(.transport, "\(operation): \(error)")
            }
        }
        if error is CancellationError { return S3Error(.transport, "\(operation): cancelled") }
        if let error = error as? IOError {
            return S3Error(.transport, "\(operation): \(String(cString: strerror(error.errnoCode)).lowercased())")
        }
        return S3Error(.transport, "\(operation): \(error)")
    }
}
