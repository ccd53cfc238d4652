import Foundation
import RegistryModel

/// The parts of an image manifest, OCI index or Docker manifest list that `mirrorgate warm`
/// follows: child manifests with their platforms, the config and the layers.
struct ManifestDocument: Decodable, Sendable {
    /// A content descriptor.
    struct Descriptor: Decodable, Sendable {
        struct Platform: Decodable, Sendable {
            var os: String
            var architecture: String
            var variant: String?
        }
        var mediaType: String?
        var digest: String
        var size: Int64
        var platform: Platform?
        /// Where non-distributable (foreign) layers are fetched from instead of the registry.
        var urls: [String]?

        var imagePlatform: ImagePlatform? {
            platform.map { ImagePlatform(os: $0.os, architecture: $0.architecture, variant: $0.variant) }
        }
    }

    var schemaVersion: Int?
    var mediaType: String?
    var manifests: [Descriptor]?
    var config: Descriptor?
    var layers: [Descriptor]?

    /// What a manifest is.
    enum Kind: Equatable {
        /// An OCI index or Docker manifest list.
        case index
        /// An OCI or Docker schema 2 image manifest.
        case image
    }

    /// Decodes `manifest`, telling an index from an image by the served media type, else the
    /// `mediaType` field, else its shape. Docker schema 1 and unknown types are refused.
    static func decode(_ manifest: GatewayClient.FetchedManifest) throws -> (ManifestDocument, Kind) {
        let document: ManifestDocument
        do {
            document = try JSONDecoder().decode(ManifestDocument.self, from: manifest.bytes)
        } catch {
            throw GatewayClient.Failure("manifest \(manifest.digest) is not a valid manifest: \(error)")
        }
        let type = [manifest.mediaType, document.mediaType ?? ""].first { !$0.isEmpty && $0 != MediaType.octetStream && $0 != "application/json" }
        switch type {
        case MediaType.ociIndex?, MediaType.dockerManifestList?:
            return (document, .index)
        case MediaType.ociManifest?, MediaType.dockerManifest?:
            return (document, .image)
        case nil where document.manifests != nil:
            return (document, .index)
        case nil where document.config != nil:
            return (document, .image)
        default:
            throw GatewayClient.Failure("manifest \(manifest.digest) has unsupported media type '\(type ?? "none")' (Docker schema 1 images cannot be warmed)")
        }
    }
}
