import MirrorGateStorage

extension StorageError {
    /// S3 error codes and statuses that mean "full": 507 Insufficient Storage, MinIO's
    /// `XMinioStorageFull` and bucket quota, Ceph RGW's `QuotaExceeded` (sent with a 403, so it
    /// must be looked at before the 403 is read as a credentials problem).
    static let s3QuotaCodes: Set<String> = [
        "QuotaExceeded", "XMinioStorageFull", "XMinioAdminBucketQuotaExceeded", "InsufficientStorage", "StorageFull",
    ]

    /// The storage failure an S3 failure stands for.
    ///
    /// - absent → ``Code/notFound`` (a miss);
    /// - a full store or quota → ``Code/resourceExhausted``;
    /// - misconfigured (wrong secret, no such bucket, wrong region) → ``Code/readOnly``, with a
    ///   cause that names the `storage.s3` keys to check: the cache cannot be written, the
    ///   gateway passes blobs through and says why in `/readyz`, and nothing reads it as a miss;
    /// - unavailable (5xx, SlowDown, timeouts, refused connections) → ``Code/unavailable``;
    /// - anything else (a request the store refused as built) → ``Code/io``.
    ///
    /// The cause reaches clients and `/readyz`, so it carries S3's status and code only; S3's
    /// message and request id go to ``logDetail``.
    static func s3(_ error: S3Error, _ operation: String) -> StorageError {
        let answer = error.status.map { status in "\(status)" + (error.s3Code.map { " \($0)" } ?? "") } ?? error.code.rawValue
        if error.status == 507 || error.s3Code.map(s3QuotaCodes.contains) == true {
            return StorageError(
                .resourceExhausted, operation: operation, cause: "the S3 store is full or over its quota (\(answer))",
                logDetail: error.description)
        }
        let (code, cause): (Code, String) = switch error.category {
        case .absent: (.notFound, "no such object in the bucket")
        case .misconfigured: (.readOnly, Self.misconfiguration(error, answer: answer))
        case .unavailable: (.unavailable, "the S3 store did not answer as it should (\(answer)); retried on the next request")
        case .rejected, .alreadyExists: (.io, "the S3 store refused the request (\(answer))")
        }
        return StorageError(code, operation: operation, cause: cause, logDetail: error.description)
    }

    /// What an operator has to fix, by the kind of misconfiguration.
    private static func misconfiguration(_ error: S3Error, answer: String) -> String {
        switch error.code {
        case .bucketNotFound:
            "the bucket does not exist (\(answer)); check storage.s3.bucket (the gateway does not create buckets)"
        case .wrongEndpoint:
            "the bucket is in another region or behind another endpoint (\(answer)); check storage.s3.region, endpoint and path_style"
        case .invalidConfiguration:
            "storage.s3 is invalid (\(error.message))"
        default:
            "S3 refused the credentials or their permissions (\(answer)); check storage.s3.access_key_id, the secret and the key's policy"
        }
    }
}
