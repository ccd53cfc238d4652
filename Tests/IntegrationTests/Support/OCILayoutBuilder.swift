import Foundation

/// Builds image content (layers, configs, manifests, indexes) in memory from random
/// bytes and writes it as a layout skopeo can copy from.
///
/// Two on-disk layouts are supported:
/// - **OCI image layout** (``writeOCILayout(to:tag:top:)``): `oci-layout`, `index.json`,
///   `blobs/sha256/<hex>`. skopeo 1.9 only finds `index.json` entries whose media type is
///   an OCI manifest or OCI index ("no descriptor found for reference" otherwise), so
///   this is for ``Style/oci`` content.
/// - **skopeo `dir:` layout** (``writeDirLayout(to:top:)``): `version`, `manifest.json`
///   (the top manifest), `<hex>.manifest.json` (the other manifests), `<hex>` (every
///   other blob). It holds any manifest type byte for byte, so this is how Docker
///   schema 2 images and manifest lists are pushed.
///
/// Manifest bytes are produced once (JSON with sorted keys) and never re-serialized:
/// what is written is exactly what was hashed.
public struct OCILayoutBuilder: Sendable {
    /// Which family of media types to use.
    public enum Style: Sendable, Hashable {
        /// `application/vnd.oci.image.*`.
        case oci
        /// `application/vnd.docker.*` (Docker image manifest v2 schema 2 / manifest list).
        case docker
    }

    /// How layer blobs are made.
    public enum LayerFormat: Sendable, Hashable {
        /// A real tar archive holding one file of `size` random bytes, gzip-wrapped
        /// (deflate "stored" blocks, so the blob is a few dozen bytes larger than the
        /// tar). Media type `…tar+gzip` / `…tar.gzip`. The config's `diff_ids` are the
        /// tar's digests. skopeo never recompresses these.
        case tarGzip
        /// Exactly `size` random bytes declared as an uncompressed tar
        /// (`…layer.v1.tar` / `…rootfs.diff.tar`). Not a valid tar: registries and
        /// skopeo do not look inside, but skopeo would gzip it on copy unless
        /// `--preserve-digests` is passed (``Skopeo`` always passes it).
        case random
    }

    /// Media type strings.
    public enum MediaType {
        public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
        public static let ociIndex = "application/vnd.oci.image.index.v1+json"
        public static let ociConfig = "application/vnd.oci.image.config.v1+json"
        public static let ociLayerTar = "application/vnd.oci.image.layer.v1.tar"
        public static let ociLayerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
        public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
        public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
        public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
        public static let dockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar"
        public static let dockerLayerTarGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"

        /// Whether `mediaType` is a manifest, index or manifest list.
        public static func isManifest(_ mediaType: String) -> Bool {
            [ociManifest, ociIndex, dockerManifest, dockerManifestList].contains(mediaType)
        }

        /// Whether `mediaType` is an index or manifest list.
        public static func isIndex(_ mediaType: String) -> Bool {
            mediaType == ociIndex || mediaType == dockerManifestList
        }
    }

    /// Every piece of content added so far, by digest.
    public private(set) var contents: [String: Data] = [:]
    /// Descriptors of every manifest / index added, in the order added.
    public private(set) var manifests: [ContentDescriptor] = []
    /// Descriptors of every non-manifest blob (configs and layers), in the order added.
    public private(set) var blobs: [ContentDescriptor] = []

    /// A unique label stamped into every config this builder makes, so two fixtures
    /// never share a config digest.
    public let nonce: String

    /// Creates an empty builder.
    public init(nonce: String = UUID().uuidString.lowercased()) {
        self.nonce = nonce
    }

    // MARK: - Adding content

    /// Adds raw content; returns its descriptor. Manifest media types go to ``manifests``.
    @discardableResult
    public mutating func addBlob(_ data: Data, mediaType: String, platform: ContentDescriptor.Platform? = nil) -> ContentDescriptor {
        let descriptor = ContentDescriptor(
            mediaType: mediaType, digest: ContentDescriptor.sha256(of: data), size: data.count, platform: platform)
        if contents.updateValue(data, forKey: descriptor.digest) == nil {
            if MediaType.isManifest(mediaType) { manifests.append(descriptor) } else { blobs.append(descriptor) }
        }
        return descriptor
    }

    /// Adds one layer whose payload is `size` random bytes; returns its descriptor and
    /// its diff ID (digest of the uncompressed tar).
    public mutating func addLayer(size: Int, style: Style, format: LayerFormat = .tarGzip) -> (descriptor: ContentDescriptor, diffID: String) {
        let payload = Self.randomBytes(count: size)
        switch format {
        case .random:
            let type = style == .oci ? MediaType.ociLayerTar : MediaType.dockerLayerTar
            let descriptor = addBlob(payload, mediaType: type)
            return (descriptor, descriptor.digest)
        case .tarGzip:
            let tar = Self.tar(fileName: "payload-\(UUID().uuidString.prefix(8).lowercased()).bin", contents: payload)
            let type = style == .oci ? MediaType.ociLayerTarGzip : MediaType.dockerLayerTarGzip
            let descriptor = addBlob(Self.gzipStored(tar), mediaType: type)
            return (descriptor, ContentDescriptor.sha256(of: tar))
        }
    }

    /// Adds an image config for `platform` with the given diff IDs.
    public mutating func addConfig(platform: ContentDescriptor.Platform, diffIDs: [String], style: Style) -> ContentDescriptor {
        let config = ImageConfig(
            architecture: platform.architecture,
            os: platform.os,
            variant: platform.variant,
            created: "2024-01-01T00:00:00Z",
            config: .init(Env: ["PATH=/usr/local/bin:/usr/bin:/bin"], Labels: ["org.mirrorgate.fixture": nonce]),
            rootfs: .init(type: "layers", diff_ids: diffIDs),
            history: diffIDs.indices.map { .init(created: "2024-01-01T00:00:00Z", created_by: "mirrorgate fixture layer \($0)") }
        )
        return addBlob(Self.encode(config), mediaType: style == .oci ? MediaType.ociConfig : MediaType.dockerConfig)
    }

    /// Adds an image manifest referencing `config` and `layers`. `platform` is only
    /// recorded in the returned descriptor (for use in an index).
    public mutating func addImageManifest(
        config: ContentDescriptor,
        layers: [ContentDescriptor],
        style: Style,
        platform: ContentDescriptor.Platform? = nil
    ) -> ContentDescriptor {
        func plain(_ d: ContentDescriptor) -> ContentDescriptor {
            ContentDescriptor(mediaType: d.mediaType, digest: d.digest, size: d.size)
        }
        let manifest = ImageManifest(
            schemaVersion: 2,
            mediaType: style == .oci ? MediaType.ociManifest : MediaType.dockerManifest,
            config: plain(config),
            layers: layers.map(plain)
        )
        return addBlob(Self.encode(manifest), mediaType: manifest.mediaType, platform: platform)
    }

    /// Adds a complete single-platform image: layers of `layerSizes`, a config and a
    /// manifest. Returns the manifest's descriptor (with `platform` set).
    public mutating func addImage(
        layerSizes: [Int],
        platform: ContentDescriptor.Platform = .linuxAMD64,
        style: Style,
        format: LayerFormat = .tarGzip
    ) -> ContentDescriptor {
        let layers = layerSizes.map { addLayer(size: $0, style: style, format: format) }
        let config = addConfig(platform: platform, diffIDs: layers.map(\.diffID), style: style)
        return addImageManifest(config: config, layers: layers.map(\.descriptor), style: style, platform: platform)
    }

    /// Adds an OCI index (``Style/oci``) or Docker manifest list (``Style/docker``)
    /// over `children` (whose `platform` fields are kept).
    public mutating func addIndex(children: [ContentDescriptor], style: Style) -> ContentDescriptor {
        let index = ImageIndex(
            schemaVersion: 2,
            mediaType: style == .oci ? MediaType.ociIndex : MediaType.dockerManifestList,
            manifests: children
        )
        return addBlob(Self.encode(index), mediaType: index.mediaType)
    }

    // MARK: - Writing

    /// Writes an OCI image layout at `directory` whose `index.json` has one entry:
    /// `top`, annotated `org.opencontainers.image.ref.name: <tag>`.
    public func writeOCILayout(to directory: URL, tag: String, top: ContentDescriptor) throws {
        let blobDir = directory.appendingPathComponent("blobs/sha256", isDirectory: true)
        try FileManager.default.createDirectory(at: blobDir, withIntermediateDirectories: true)
        for (digest, data) in contents {
            try data.write(to: blobDir.appendingPathComponent(String(digest.dropFirst("sha256:".count))))
        }
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: directory.appendingPathComponent("oci-layout"))
        var entry = top
        entry.platform = nil
        entry.annotations = ["org.opencontainers.image.ref.name": tag]
        let index = ImageIndex(schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [entry])
        try Self.encode(index).write(to: directory.appendingPathComponent("index.json"))
    }

    /// Writes a skopeo `dir:` layout at `directory` with `top` as `manifest.json`.
    public func writeDirLayout(to directory: URL, top: ContentDescriptor) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data("Directory Transport Version: 1.1\n".utf8).write(to: directory.appendingPathComponent("version"))
        for (digest, data) in contents {
            let hex = String(digest.dropFirst("sha256:".count))
            let name: String
            if digest == top.digest {
                name = "manifest.json"
            } else if manifests.contains(where: { $0.digest == digest }) {
                name = "\(hex).manifest.json"
            } else {
                name = hex
            }
            try data.write(to: directory.appendingPathComponent(name))
        }
    }

    // MARK: - Byte helpers

    /// `count` pseudo-random bytes (xoshiro256** seeded from the system generator).
    public static func randomBytes(count: Int) -> Data {
        var generator = Xoshiro256(seed: SystemRandomNumberGenerator())
        var data = Data(count: count)
        data.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < count {
                var word = generator.next().littleEndian
                let n = min(8, count - offset)
                withUnsafeBytes(of: &word) { raw.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: n) }
                offset += n
            }
        }
        return data
    }

    /// A POSIX ustar archive with one regular file (mode 0644, mtime 2024-01-01).
    public static func tar(fileName: String, contents: Data) -> Data {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ string: String, at offset: Int, width: Int) {
            for (i, byte) in string.utf8.prefix(width).enumerated() { header[offset + i] = byte }
        }
        func octal(_ value: Int, width: Int) -> String {
            let digits = String(value, radix: 8)
            return String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits
        }
        put(fileName, at: 0, width: 100)
        put(octal(0o644, width: 8), at: 100, width: 8)
        put(octal(0, width: 8), at: 108, width: 8)
        put(octal(0, width: 8), at: 116, width: 8)
        put(octal(contents.count, width: 12), at: 124, width: 12)
        put(octal(1_704_067_200, width: 12), at: 136, width: 12)
        put("        ", at: 148, width: 8)  // checksum placeholder: eight spaces
        header[156] = UInt8(ascii: "0")
        put("ustar", at: 257, width: 6)  // "ustar\0"
        put("00", at: 263, width: 2)
        put("root", at: 265, width: 32)
        put("root", at: 297, width: 32)
        let checksum = header.reduce(0) { $0 + Int($1) }
        put(octal(checksum, width: 7), at: 148, width: 7)  // 6 digits + NUL, then the space stays
        header[154] = 0
        header[155] = UInt8(ascii: " ")

        var archive = Data(header)
        archive.append(contents)
        let padding = (512 - contents.count % 512) % 512
        archive.append(Data(count: padding + 1024))  // pad the file, then two zero blocks
        return archive
    }

    /// `data` wrapped as gzip using uncompressed ("stored") deflate blocks.
    public static func gzipStored(_ data: Data) -> Data {
        var out = Data([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff])
        var offset = 0
        repeat {
            let n = min(65_535, data.count - offset)
            let final = offset + n == data.count
            out.append(final ? 0x01 : 0x00)
            let len = UInt16(n)
            out.append(contentsOf: [UInt8(len & 0xff), UInt8(len >> 8), UInt8(~len & 0xff), UInt8(~len >> 8)])
            out.append(data[data.startIndex + offset ..< data.startIndex + offset + n])
            offset += n
        } while offset < data.count
        let crc = crc32(data)
        let size = UInt32(truncatingIfNeeded: data.count)
        for value in [crc, size] {
            out.append(contentsOf: [UInt8(value & 0xff), UInt8((value >> 8) & 0xff), UInt8((value >> 16) & 0xff), UInt8(value >> 24)])
        }
        return out
    }

    /// The CRC-32 (IEEE, as used by gzip) of `data`.
    public static func crc32(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        data.withUnsafeBytes { bytes in
            for byte in bytes {
                crc = crc32Table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8)
            }
        }
        return crc ^ 0xffff_ffff
    }

    private static let crc32Table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xedb8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    private static func encode(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding plain structs of strings and integers cannot fail.
        return try! encoder.encode(value)
    }

    // MARK: - JSON shapes

    private struct ImageManifest: Encodable {
        var schemaVersion: Int
        var mediaType: String
        var config: ContentDescriptor
        var layers: [ContentDescriptor]
    }

    private struct ImageIndex: Encodable {
        var schemaVersion: Int
        var mediaType: String
        var manifests: [ContentDescriptor]
    }

    // swiftlint:disable identifier_name
    private struct ImageConfig: Encodable {
        struct Settings: Encodable {
            var Env: [String]
            var Labels: [String: String]
        }
        struct RootFS: Encodable {
            var type: String
            var diff_ids: [String]
        }
        struct History: Encodable {
            var created: String
            var created_by: String
        }
        var architecture: String
        var os: String
        var variant: String?
        var created: String
        var config: Settings
        var rootfs: RootFS
        var history: [History]
    }
    // swiftlint:enable identifier_name

    /// xoshiro256**: fast, good-quality bytes for test payloads (not cryptographic).
    private struct Xoshiro256 {
        var s: (UInt64, UInt64, UInt64, UInt64)

        init(seed: some RandomNumberGenerator) {
            var seed = seed
            s = (seed.next(), seed.next(), seed.next(), seed.next() | 1)
        }

        mutating func next() -> UInt64 {
            let result = rotl(s.1 &* 5, 7) &* 9
            let t = s.1 << 17
            s.2 ^= s.0
            s.3 ^= s.1
            s.1 ^= s.2
            s.0 ^= s.3
            s.2 ^= t
            s.3 = rotl(s.3, 45)
            return result
        }

        private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
    }
}
