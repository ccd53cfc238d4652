import Foundation

/// The parts of an image manifest, OCI index or Docker manifest list the gateway reads: its
/// media type, child manifests with their platforms, the config and the layers. The one
/// manifest decoder of the project (the pull path, cache reconciliation and `mirrorgate warm`
/// all use it).
public struct ManifestDocument: Decodable, Sendable {
    /// A content descriptor.
    public struct Descriptor: Decodable, Sendable {
        public struct Platform: Decodable, Sendable {
            public var os: String
            public var architecture: String
            public var variant: String?
        }
        public var mediaType: String?
        public var digest: String
        public var size: Int64
        public var platform: Platform?
        /// Where non-distributable (foreign) layers are fetched from instead of the registry.
        public var urls: [String]?

        public var imagePlatform: ImagePlatform? {
            platform.map { ImagePlatform(os: $0.os, architecture: $0.architecture, variant: $0.variant) }
        }
    }

    public var schemaVersion: Int?
    public var mediaType: String?
    public var manifests: [Descriptor]?
    public var config: Descriptor?
    public var layers: [Descriptor]?

    /// The manifest media types the gateway fetches, stores and serves; nothing else is ever
    /// served as a manifest (an upstream's `text/html` "manifest" is refused, not cached).
    public static let servedTypes: Set<String> = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest]

    /// Decodes `bytes`; nil when they are not a manifest's JSON.
    public static func decode(_ bytes: some Collection<UInt8>) -> ManifestDocument? {
        try? JSONDecoder().decode(ManifestDocument.self, from: Data(bytes))
    }

    /// The media type to store and serve a manifest under, or nil when it is not a manifest
    /// the gateway serves: the body must be schema 2 JSON; the type is the `Content-Type` the
    /// upstream sent when that is a served type, else the body's `mediaType` field, else the
    /// body's shape (OCI index or image manifest). A `Content-Type` that is neither a served
    /// type nor generic JSON (`text/html`, schema 1) refuses the manifest.
    public static func servedType(contentType: String?, body: some Collection<UInt8>) -> String? {
        guard let document = decode(body), document.schemaVersion == 2 else { return nil }
        let header = contentType?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        if servedTypes.contains(header) {
            if let declared = document.mediaType, declared != header { return nil }
            return header
        }
        guard ["", "application/json", "text/plain", MediaType.octetStream].contains(header) else { return nil }
        return document.inferredType
    }

    /// The type the body declares or, for OCI documents that leave `mediaType` out, its shape.
    public var inferredType: String? {
        if let type = mediaType { return Self.servedTypes.contains(type) ? type : nil }
        if manifests != nil { return MediaType.ociIndex }
        if config != nil || layers != nil { return MediaType.ociManifest }
        return nil
    }

    /// The `linux/amd64` child of an index.
    public var linuxAmd64Child: Digest? {
        let entry = manifests?.first { $0.platform?.os == "linux" && $0.platform?.architecture == "amd64" }
        return entry.flatMap { try? Digest(parsing: $0.digest) }
    }
}
