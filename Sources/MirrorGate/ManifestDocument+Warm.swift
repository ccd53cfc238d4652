import Foundation
import RegistryModel

/// What `mirrorgate warm` needs of a fetched manifest (the decoder is RegistryModel's).
extension ManifestDocument {
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
        guard let document = ManifestDocument.decode(manifest.bytes) else {
            throw GatewayClient.Failure("manifest \(manifest.digest) is not a valid manifest")
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
