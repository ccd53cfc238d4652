import Crypto
import Foundation

/// An OCI content descriptor: media type, digest and size of a blob or manifest,
/// plus the platform of an index entry. Encodes to the JSON used in manifests.
public struct ContentDescriptor: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The platform of a manifest referenced from an index / manifest list.
    public struct Platform: Sendable, Hashable, Codable, CustomStringConvertible {
        /// CPU architecture, e.g. `amd64`, `arm64`.
        public var architecture: String
        /// Operating system, e.g. `linux`.
        public var os: String
        /// CPU variant, e.g. `v8`, if any.
        public var variant: String?

        /// Creates a platform.
        public init(architecture: String, os: String = "linux", variant: String? = nil) {
            self.architecture = architecture
            self.os = os
            self.variant = variant
        }

        /// `linux/amd64`.
        public static let linuxAMD64 = Platform(architecture: "amd64")
        /// `linux/arm64/v8`.
        public static let linuxARM64 = Platform(architecture: "arm64", variant: "v8")

        /// `os/architecture[/variant]`.
        public var description: String { [os, architecture, variant].compactMap { $0 }.joined(separator: "/") }
    }

    /// The content's media type.
    public var mediaType: String
    /// `sha256:<64 hex digits>`.
    public var digest: String
    /// The content's length in bytes.
    public var size: Int
    /// The platform, for entries of an index or manifest list.
    public var platform: Platform?
    /// Annotations, if any.
    public var annotations: [String: String]?

    /// Creates a descriptor.
    public init(mediaType: String, digest: String, size: Int, platform: Platform? = nil, annotations: [String: String]? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
        self.annotations = annotations
    }

    /// The 64 hex digits of ``digest``.
    public var hex: String { String(digest.split(separator: ":", maxSplits: 1).last ?? "") }

    /// `mediaType digest (size bytes)`.
    public var description: String { "\(mediaType) \(digest) (\(size) bytes)" }

    /// `sha256:<hex>` of `data`.
    public static func sha256(of data: Data) -> String {
        "sha256:" + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// `sha256:<hex>` and length of a file, read in 1 MiB chunks.
    public static func sha256(ofFile url: URL) throws -> (digest: String, size: Int) {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var hasher = SHA256()
        var size = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            size += chunk.count
        }
        return ("sha256:" + hasher.finalize().map { String(format: "%02x", $0) }.joined(), size)
    }
}
