import Foundation

/// A test image generated from random bytes and written to a temporary layout
/// directory that skopeo can push, with a record of every digest it contains.
///
/// Kinds (see ``Kind``): a single-platform OCI image, a multi-arch OCI index
/// (linux/amd64 + linux/arm64 by default), a single-platform Docker schema 2 image,
/// and a Docker manifest list of schema 2 children. OCI kinds are written as an OCI
/// image layout; Docker kinds as a skopeo `dir:` layout (skopeo 1.9 cannot read
/// Docker media types from an OCI layout). Either way skopeo pushes the exact bytes
/// when given `--preserve-digests`.
///
/// Every fixture gets fresh random layers and a unique config label, so fixtures
/// never share content unless a test arranges it with ``OCILayoutBuilder``.
public struct ImageFixture: Sendable {
    /// What shape of image to make.
    public enum Kind: String, Sendable, CaseIterable, CustomStringConvertible {
        /// One OCI image manifest.
        case ociImage
        /// An OCI image index over one OCI manifest per platform.
        case ociIndex
        /// One Docker image manifest v2 schema 2.
        case dockerImage
        /// A Docker manifest list over one schema 2 manifest per platform.
        case dockerManifestList

        /// Whether the top manifest is an index / manifest list.
        public var isMultiPlatform: Bool { self == .ociIndex || self == .dockerManifestList }
        /// The media type family.
        public var style: OCILayoutBuilder.Style { self == .ociImage || self == .ociIndex ? .oci : .docker }
        /// The raw value.
        public var description: String { rawValue }
    }

    /// The on-disk layout of ``directory``.
    public enum LayoutFormat: String, Sendable {
        /// OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`); skopeo `oci:DIR:TAG`.
        case oci
        /// skopeo directory layout (`manifest.json`, `<hex>.manifest.json`, `<hex>`); skopeo `dir:DIR`.
        case dir
    }

    /// The shape of the image.
    public let kind: Kind
    /// The tag the fixture is meant to be pushed as (also the OCI layout's ref name).
    public let tag: String
    /// The layout directory.
    public let directory: URL
    /// How ``directory`` is laid out.
    public let layoutFormat: LayoutFormat
    /// The top manifest (image manifest, index or manifest list).
    public let top: ContentDescriptor
    /// The per-platform manifests of an index / manifest list (empty for single images),
    /// with their `platform` set.
    public let children: [ContentDescriptor]
    /// Every manifest: ``top`` first, then the others (``children`` for generated fixtures).
    public let manifests: [ContentDescriptor]
    /// Every non-manifest blob: configs and layers.
    public let blobs: [ContentDescriptor]
    /// The bytes of every manifest and blob, by digest.
    public let contents: [String: Data]
    /// Owns ``directory`` (removed when the last copy of the fixture goes away).
    public let storage: TemporaryDirectory

    /// The top manifest's digest.
    public var topDigest: String { top.digest }
    /// The top manifest's media type.
    public var topMediaType: String { top.mediaType }
    /// Digests of every manifest, top first.
    public var manifestDigests: [String] { manifests.map(\.digest) }
    /// Digests of every config and layer.
    public var blobDigests: [String] { blobs.map(\.digest) }
    /// Only the layer blobs (no configs).
    public var layers: [ContentDescriptor] {
        blobs.filter { $0.mediaType != OCILayoutBuilder.MediaType.ociConfig && $0.mediaType != OCILayoutBuilder.MediaType.dockerConfig }
    }
    /// Every digest in the fixture (manifests and blobs).
    public var allDigests: Set<String> { Set(contents.keys) }
    /// Sizes of every manifest and blob, by digest.
    public var sizes: [String: Int] { contents.mapValues(\.count) }
    /// The skopeo source reference: `oci:<dir>:<tag>` or `dir:<dir>`.
    public var sourceReference: String {
        switch layoutFormat {
        case .oci: "oci:\(directory.path):\(tag)"
        case .dir: "dir:\(directory.path)"
        }
    }

    /// The bytes of manifest or blob `digest` (`nil` if not part of the fixture).
    public func bytes(of digest: String) -> Data? { contents[digest] }

    /// Generates a fixture.
    ///
    /// - Parameters:
    ///   - kind: The image shape.
    ///   - tag: The tag to record (and to name the OCI layout entry).
    ///   - layerSizes: Payload sizes of the layers of each image (random bytes; with
    ///     ``OCILayoutBuilder/LayerFormat/tarGzip`` the blob is about 1.1 KiB larger).
    ///   - platforms: The platforms of a multi-platform kind (the first is used for
    ///     single images).
    ///   - layerFormat: How layers are made (real gzip'd tar by default).
    public static func make(
        _ kind: Kind,
        tag: String = "v1",
        layerSizes: [Int] = [64 << 10, 256 << 10],
        platforms: [ContentDescriptor.Platform] = [.linuxAMD64, .linuxARM64],
        layerFormat: OCILayoutBuilder.LayerFormat = .tarGzip
    ) throws -> ImageFixture {
        var builder = OCILayoutBuilder()
        let style = kind.style
        let top: ContentDescriptor
        var children: [ContentDescriptor] = []
        if kind.isMultiPlatform {
            children = platforms.map {
                builder.addImage(layerSizes: layerSizes, platform: $0, style: style, format: layerFormat)
            }
            top = builder.addIndex(children: children, style: style)
        } else {
            var manifest = builder.addImage(
                layerSizes: layerSizes, platform: platforms.first ?? .linuxAMD64, style: style, format: layerFormat)
            manifest.platform = nil
            top = manifest
        }
        return try ImageFixture(kind: kind, tag: tag, builder: builder, top: top, children: children)
    }

    /// Writes a fixture from hand-built content (e.g. layers shared between images).
    ///
    /// `top` must have been added to `builder`; `children` are the platform manifests
    /// if `top` is an index. Uses an OCI layout for OCI media types, `dir:` otherwise.
    public init(
        kind: Kind,
        tag: String,
        builder: OCILayoutBuilder,
        top: ContentDescriptor,
        children: [ContentDescriptor] = []
    ) throws {
        self.kind = kind
        self.tag = tag
        self.top = top
        self.children = children
        self.manifests = [top] + builder.manifests.filter { $0.digest != top.digest }
        self.blobs = builder.blobs
        self.contents = builder.contents
        self.storage = try TemporaryDirectory(prefix: "mirrorgate-fixture-\(kind.rawValue)")
        self.directory = storage.appending("layout", isDirectory: true)
        if kind.style == .oci {
            layoutFormat = .oci
            try builder.writeOCILayout(to: directory, tag: tag, top: top)
        } else {
            layoutFormat = .dir
            try builder.writeDirLayout(to: directory, top: top)
        }
    }
}
