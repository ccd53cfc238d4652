import Foundation

/// The checked content of an image layout on disk (OCI image layout or skopeo `dir:`).
///
/// ``init(verifying:)`` recomputes the SHA-256 of every content file and checks it
/// against the file's name, then walks the manifests from the top entry and checks
/// that every referenced manifest, config and layer is present with the declared size.
/// Any mismatch throws ``Failure`` listing all problems.
public struct VerifiedLayout: Sendable {
    /// Everything wrong with a layout.
    public struct Failure: Error, CustomStringConvertible {
        /// One line per problem.
        public let problems: [String]
        /// The layout checked.
        public let directory: URL
        public var description: String {
            "layout \(directory.path) is invalid:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
        }
    }

    /// The layout directory.
    public let directory: URL
    /// How it is laid out.
    public let format: ImageFixture.LayoutFormat
    /// The top manifests: `index.json` entries (OCI) or `manifest.json` (dir).
    public let topDigests: [String]
    /// Every manifest reachable from the top (top included).
    public let manifestDigests: Set<String>
    /// Every config and layer reachable from the top.
    public let blobDigests: Set<String>
    /// Content files present but not referenced from the top.
    public let unreferencedDigests: Set<String>
    /// Size of every content file, by digest.
    public let sizes: [String: Int]
    /// Keeps a temporary output directory alive as long as the result is.
    public let storage: TemporaryDirectory?

    /// The first (usually only) top manifest digest.
    public var topDigest: String? { topDigests.first }
    /// Every referenced digest, manifests and blobs.
    public var allDigests: Set<String> { manifestDigests.union(blobDigests) }

    /// The bytes of content `digest`.
    public func bytes(of digest: String) throws -> Data {
        try Data(contentsOf: path(of: digest))
    }

    private let files: [String: URL]

    /// The file holding content `digest` (may not exist).
    public func path(of digest: String) -> URL {
        files[digest] ?? directory.appendingPathComponent("blobs/sha256/\(digest.dropFirst("sha256:".count))")
    }

    /// Verifies the layout at `directory`.
    ///
    /// - Parameter storage: A temporary directory to keep alive with the result.
    public init(verifying directory: URL, storage: TemporaryDirectory? = nil) throws {
        self.directory = directory
        self.storage = storage
        let fm = FileManager.default
        var problems: [String] = []
        var files: [String: URL] = [:]
        var sizes: [String: Int] = [:]
        var tops: [String] = []

        func record(_ url: URL, expected: String) {
            do {
                let (digest, size) = try ContentDescriptor.sha256(ofFile: url)
                if expected != digest {
                    problems.append("\(url.lastPathComponent): content hashes to \(digest)")
                }
                files[expected] = url
                sizes[expected] = size
            } catch {
                problems.append("\(url.path): unreadable: \(error)")
            }
        }

        func isHex64(_ s: Substring) -> Bool {
            s.count == 64 && s.allSatisfy { $0.isHexDigit && !$0.isUppercase }
        }

        if fm.fileExists(atPath: directory.appendingPathComponent("oci-layout").path) {
            format = .oci
            let blobDir = directory.appendingPathComponent("blobs/sha256", isDirectory: true)
            for name in (try? fm.contentsOfDirectory(atPath: blobDir.path)) ?? [] {
                guard isHex64(Substring(name)) else {
                    problems.append("unexpected file blobs/sha256/\(name)")
                    continue
                }
                record(blobDir.appendingPathComponent(name), expected: "sha256:\(name)")
            }
            if let data = try? Data(contentsOf: directory.appendingPathComponent("index.json")),
               let index = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let entries = index["manifests"] as? [[String: Any]] {
                tops = entries.compactMap { $0["digest"] as? String }
            } else {
                problems.append("index.json missing or unreadable")
            }
        } else if fm.fileExists(atPath: directory.appendingPathComponent("version").path) {
            format = .dir
            for name in (try? fm.contentsOfDirectory(atPath: directory.path)) ?? [] {
                let url = directory.appendingPathComponent(name)
                if name == "manifest.json" {
                    if let (digest, size) = try? ContentDescriptor.sha256(ofFile: url) {
                        files[digest] = files[digest] ?? url
                        sizes[digest] = size
                        tops = [digest]
                    } else {
                        problems.append("manifest.json unreadable")
                    }
                } else if name.hasSuffix(".manifest.json"), isHex64(name.dropLast(".manifest.json".count)) {
                    record(url, expected: "sha256:\(name.dropLast(".manifest.json".count))")
                } else if isHex64(Substring(name)) {
                    record(url, expected: "sha256:\(name)")
                }
                // `version` and `signature-*` files are not content.
            }
        } else {
            throw Failure(problems: ["neither oci-layout nor version file found"], directory: directory)
        }
        if tops.isEmpty { problems.append("no top manifest") }

        // Walk references from the top manifests.
        var manifests = Set<String>()
        var blobs = Set<String>()
        var queue = tops
        func check(_ descriptor: [String: Any], from parent: String) -> String? {
            guard let digest = descriptor["digest"] as? String else {
                problems.append("\(parent): descriptor without digest")
                return nil
            }
            guard let size = sizes[digest] else {
                problems.append("\(parent) references \(digest), which is missing")
                return nil
            }
            if let declared = descriptor["size"] as? Int, declared != size {
                problems.append("\(parent) declares \(digest) as \(declared) bytes, file has \(size)")
            }
            return digest
        }
        while let digest = queue.popLast() {
            guard !manifests.contains(digest) else { continue }
            guard let url = files[digest], let data = try? Data(contentsOf: url) else {
                problems.append("manifest \(digest) is missing")
                continue
            }
            manifests.insert(digest)
            guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                problems.append("manifest \(digest) is not a JSON object")
                continue
            }
            if let children = json["manifests"] as? [[String: Any]] {
                queue += children.compactMap { check($0, from: digest) }
            } else {
                if let config = json["config"] as? [String: Any], let d = check(config, from: digest) { blobs.insert(d) }
                for layer in json["layers"] as? [[String: Any]] ?? [] {
                    if let d = check(layer, from: digest) { blobs.insert(d) }
                }
            }
        }
        guard problems.isEmpty else { throw Failure(problems: problems, directory: directory) }
        self.topDigests = tops
        self.manifestDigests = manifests
        self.blobDigests = blobs
        self.unreferencedDigests = Set(sizes.keys).subtracting(manifests).subtracting(blobs)
        self.sizes = sizes
        self.files = files
    }
}
