/// `storage.s3`: the bucket of the S3 backend and how to reach and sign for it.
public struct S3StorageConfig: Sendable, Equatable {
    /// `scheme://host[:port]` of any S3-compatible endpoint (`https://s3.eu-west-1.amazonaws.com`,
    /// `http://127.0.0.1:9000`).
    public var endpoint: String
    /// The SigV4 region (`us-east-1` for most self-hosted stores).
    public var region: String
    public var bucket: String
    /// Put in front of every key (`mirrorgate/` gives `mirrorgate/blobs/...`); may be empty.
    public var prefix: String
    /// `endpoint/bucket/key` instead of `bucket.endpoint/key` (most self-hosted stores).
    public var pathStyle: Bool
    public var accessKeyID: String
    /// From `secret_access_key` or `secret_access_key_file`.
    public var secretAccessKey: Secret
    /// Answer cached blob GETs with a 307 to a presigned URL of the object.
    public var redirect: Bool

    public init(
        endpoint: String, region: String, bucket: String, prefix: String = "", pathStyle: Bool = false, accessKeyID: String,
        secretAccessKey: Secret, redirect: Bool = false
    ) {
        self.endpoint = endpoint
        self.region = region
        self.bucket = bucket
        self.prefix = prefix
        self.pathStyle = pathStyle
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.redirect = redirect
    }
}
