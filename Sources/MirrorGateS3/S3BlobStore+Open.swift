import Logging
import MirrorGateStorage

extension S3BlobStore {
    /// Why the bucket cannot be used at start-up: the `storage.s3` key to look at and S3's
    /// own answer (never the secret).
    public struct StartupError: Error, CustomStringConvertible {
        public let description: String

        public init(description: String) {
            self.description = description
        }
    }

    /// Opens the store for `gateway.yaml`'s `storage.s3`: creates the client and the spool
    /// directory, and checks with one listing that the endpoint answers, the bucket exists and
    /// the credentials are accepted. A wrong secret or a missing bucket fails here, at
    /// start-up, instead of turning every later request into a pass-through.
    ///
    /// The caller owns the client of the store it gets and shuts it down (``S3Client/shutdown()``).
    public static func open(
        configuration: S3Configuration, spoolDirectory: String, redirects: Bool, logger: Logger
    ) async throws -> S3BlobStore {
        let client: S3Client
        do {
            client = try S3Client(configuration: configuration, logger: logger)
        } catch {
            throw StartupError(description: "storage.s3.\(error.message)")
        }
        do {
            let spools = try SpoolDirectory(path: spoolDirectory, logger: logger)
            try await client.checkAccess()
            return S3BlobStore(client: client, spools: spools, redirects: redirects, logger: logger)
        } catch let error as S3Error {
            try? await client.shutdown()
            throw StartupError(
                description: "storage.s3: cannot use bucket \"\(configuration.bucket)\" at \(configuration.endpoint): \(error); \(hint(error))")
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// What to check for a failure of the start-up listing.
    static func hint(_ error: S3Error) -> String {
        switch error.code {
        case .forbidden:
            "check storage.s3.access_key_id and the secret (secret_access_key or secret_access_key_file), and that the key may list and write the bucket"
        case .bucketNotFound:
            "check storage.s3.bucket; the gateway does not create buckets"
        case .wrongEndpoint:
            "check storage.s3.region, endpoint and path_style"
        case .transport, .timeout:
            "check that storage.s3.endpoint is reachable from the gateway"
        default:
            "check storage.s3"
        }
    }
}
