import Foundation

/// What a client that pulls one platform of a fixture ends up with, for checking what
/// `docker image inspect` / `podman image inspect` report.
extension ImageFixture {
    /// The config and layers of one image manifest of the fixture.
    public struct ImageContent: Sendable, Hashable {
        /// The image manifest's digest.
        public let manifestDigest: String
        /// The config's digest: the image ID clients report.
        public let configDigest: String
        /// The layer blobs' digests, bottom first.
        public let layerDigests: [String]
        /// The config's `rootfs.diff_ids`: digests of the uncompressed layer tars.
        public let diffIDs: [String]
    }

    /// The image manifest a client picks for `platform`: the top manifest of a
    /// single-platform fixture, or the child of an index with the platform's OS and
    /// architecture (and variant, if given). `nil` if the index has no such child.
    public func manifest(for platform: ContentDescriptor.Platform = .linuxAMD64) -> ContentDescriptor? {
        guard kind.isMultiPlatform else { return top }
        return children.first {
            $0.platform?.os == platform.os && $0.platform?.architecture == platform.architecture
                && (platform.variant == nil || $0.platform?.variant == platform.variant)
        }
    }

    /// The config and layers of the image manifest `digest` (which must be one of the
    /// fixture's image manifests), read from the fixture's own bytes.
    public func imageContent(ofManifest digest: String) throws -> ImageContent {
        func object(_ digest: String) throws -> [String: Any] {
            guard let data = bytes(of: digest),
                  let value = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            else { throw ManagedProcess.Failure("fixture has no JSON object \(digest)") }
            return value
        }
        let manifest = try object(digest)
        guard let config = (manifest["config"] as? [String: Any])?["digest"] as? String,
              let layers = manifest["layers"] as? [[String: Any]]
        else { throw ManagedProcess.Failure("\(digest) is not an image manifest") }
        let diffIDs = ((try object(config))["rootfs"] as? [String: Any])?["diff_ids"] as? [String] ?? []
        return ImageContent(
            manifestDigest: digest, configDigest: config, layerDigests: layers.compactMap { $0["digest"] as? String }, diffIDs: diffIDs)
    }

    /// ``imageContent(ofManifest:)`` of ``manifest(for:)``.
    public func imageContent(for platform: ContentDescriptor.Platform = .linuxAMD64) throws -> ImageContent {
        guard let manifest = manifest(for: platform) else {
            throw ManagedProcess.Failure("\(kind) fixture has no manifest for \(platform)")
        }
        return try imageContent(ofManifest: manifest.digest)
    }
}
