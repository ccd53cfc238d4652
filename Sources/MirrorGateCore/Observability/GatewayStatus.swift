import Foundation

/// Everything the status page, `GET /_mirrorgate/status.json` and `mirrorgate status` show:
/// each registry's upstreams in order with health, circuit and budget; cache use; hit counts;
/// the last failovers. Never credentials. Encoded with snake_case keys and ISO 8601 dates.
public struct GatewayStatus: Codable, Sendable {
    /// The cache's use and state. Never its path: filesystem layout is for the operator's
    /// configuration, not for whoever reads the status.
    public struct Cache: Codable, Sendable {
        public var sizeBytes: UInt64
        public var maxSizeBytes: UInt64
        public var objects: Int
        /// False while the disk is full or read-only (blobs pass through, verified, uncached).
        public var writable: Bool
        public var unwritableReason: String?
        public var manifestHits: Int
        public var manifestMisses: Int
        public var blobHits: Int
        public var blobMisses: Int
        /// Hits over hits + misses (manifests and blobs together); nil before any request.
        public var hitRatio: Double?

        public init(sizeBytes: UInt64, maxSizeBytes: UInt64, objects: Int, writable: Bool, unwritableReason: String?,
                    manifestHits: Int, manifestMisses: Int, blobHits: Int, blobMisses: Int) {
            self.sizeBytes = sizeBytes
            self.maxSizeBytes = maxSizeBytes
            self.objects = objects
            self.writable = writable
            self.unwritableReason = unwritableReason
            self.manifestHits = manifestHits
            self.manifestMisses = manifestMisses
            self.blobHits = blobHits
            self.blobMisses = blobMisses
            let total = manifestHits + manifestMisses + blobHits + blobMisses
            self.hitRatio = total == 0 ? nil : Double(manifestHits + blobHits) / Double(total)
        }
    }

    /// Blob fetches in progress and the clients following them.
    public struct SingleFlight: Codable, Sendable {
        public var blobFetches: Int
        public var blobWaiters: Int
        public init(blobFetches: Int, blobWaiters: Int) {
            self.blobFetches = blobFetches
            self.blobWaiters = blobWaiters
        }
    }

    /// Tags served from the cache while an upstream is asked in the background
    /// (`tags.refresh_after`).
    public struct Revalidations: Codable, Sendable {
        public struct Failure: Codable, Sendable {
            /// `registry/repository:tag`.
            public var tag: String
            public var error: String
            public var at: Date
        }
        /// Running now.
        public var inFlight: Int
        /// Ended with an upstream's answer since start (`moved` of them found a new digest).
        public var succeeded: Int
        public var moved: Int
        /// Ended with no upstream able to confirm the tag: the cached answer stayed.
        public var failed: Int
        public var lastFailure: Failure?

        public init(inFlight: Int = 0, succeeded: Int = 0, moved: Int = 0, failed: Int = 0, lastFailure: Failure? = nil) {
            self.inFlight = inFlight
            self.succeeded = succeeded
            self.moved = moved
            self.failed = failed
            self.lastFailure = lastFailure
        }
    }

    /// When the report was made.
    public var generatedAt: Date
    public var startedAt: Date
    public var registries: [UpstreamStatusReport.Registry]
    public var cache: Cache
    public var singleFlight: SingleFlight
    /// Background tag revalidations; absent from a report made by an older gateway.
    public var tagRevalidations: Revalidations?
    /// Newest first.
    public var recentFailovers: [GatewayActivity.Failover]

    public init(generatedAt: Date, startedAt: Date, registries: [UpstreamStatusReport.Registry], cache: Cache,
                singleFlight: SingleFlight, tagRevalidations: Revalidations? = nil, recentFailovers: [GatewayActivity.Failover]) {
        self.generatedAt = generatedAt
        self.startedAt = startedAt
        self.registries = registries
        self.cache = cache
        self.singleFlight = singleFlight
        self.tagRevalidations = tagRevalidations
        self.recentFailovers = recentFailovers
    }

    /// The encoder every producer uses (snake_case, ISO 8601, sorted keys).
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// The matching decoder, for `mirrorgate status`.
    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }
}
