import Foundation

/// A view of a MirrorGate storage directory (`storage.path`) from outside the gateway:
///
/// - `blobs/<algorithm>/<2 hex>/<hex>` — complete, verified content only;
/// - `tmp/` — temporary files of fetches in flight;
/// - `metadata.sqlite` — the `objects` table (`digest, size, media_type, created_at,
///   last_access`) among others, read with Python's `sqlite3` module (python3 is already
///   a test dependency, see ``RegistryFront``), never written.
///
/// Everything here reads the file system at the moment it is called; tests poll with
/// ``eventually(timeout:interval:_:)`` where the gateway works in the background.
public struct CacheInspection: Sendable {
    /// One regular file under `blobs/`.
    public struct BlobFile: Sendable, Hashable, CustomStringConvertible {
        /// The path relative to `blobs/`, e.g. `sha256/ab/abcd…`.
        public let relativePath: String
        /// The absolute location.
        public let url: URL
        /// The file's length.
        public let size: Int
        /// `<algorithm>:<name>` when the file sits where the layout puts a blob
        /// (`<algorithm>/<first 2 hex of name>/<name>`, name lower-case hex), else `nil`.
        public let digest: String?

        public var description: String { "blobs/\(relativePath) (\(size) bytes)" }
    }

    /// One row of the `objects` table.
    public struct ObjectRow: Sendable, Hashable, CustomStringConvertible {
        public let digest: String
        public let size: Int
        public let mediaType: String?
        public let createdAt: Double
        public let lastAccess: Double

        public var description: String { "\(digest) \(size) bytes, last access \(lastAccess)" }
    }

    /// The storage root.
    public let root: URL

    /// Inspects the storage directory `root`.
    public init(root: URL) {
        self.root = root
    }

    /// Inspects `gateway`'s storage directory.
    public init(_ gateway: GatewayProcess) {
        self.init(root: gateway.storagePath)
    }

    /// `<root>/blobs`.
    public var blobsDirectory: URL { root.appendingPathComponent("blobs", isDirectory: true) }
    /// `<root>/tmp`.
    public var temporaryDirectory: URL { root.appendingPathComponent("tmp", isDirectory: true) }
    /// `<root>/metadata.sqlite`.
    public var metadataURL: URL { root.appendingPathComponent("metadata.sqlite") }

    // MARK: - blobs/

    /// Where the layout keeps content `digest` (`sha256:<hex>`), whether or not it exists.
    public func blobPath(_ digest: String) -> URL {
        let parts = digest.split(separator: ":", maxSplits: 1)
        let algorithm = parts.count == 2 ? String(parts[0]) : "sha256"
        let hex = parts.count == 2 ? String(parts[1]) : digest
        return blobsDirectory.appendingPathComponent("\(algorithm)/\(hex.prefix(2))/\(hex)")
    }

    /// Whether the cache holds a file for `digest`.
    public func contains(_ digest: String) -> Bool {
        FileManager.default.fileExists(atPath: blobPath(digest).path)
    }

    /// Every regular file under `blobs/` (at any depth), sorted by path.
    public func blobFiles() -> [BlobFile] {
        Self.regularFiles(under: blobsDirectory).map { relative, url, size in
            let components = relative.split(separator: "/").map(String.init)
            var digest: String?
            if components.count == 3 {
                let (algorithm, shard, name) = (components[0], components[1], components[2])
                let isHex = !name.isEmpty && name.allSatisfy { $0.isHexDigit && !$0.isUppercase }
                if isHex, name.hasPrefix(shard), shard.count == 2 { digest = "\(algorithm):\(name)" }
            }
            return BlobFile(relativePath: relative, url: url, size: size, digest: digest)
        }
    }

    /// The digests of every correctly placed file under `blobs/`.
    public func blobDigests() -> Set<String> {
        Set(blobFiles().compactMap(\.digest))
    }

    /// The total size of every file under `blobs/`.
    public func blobBytes() -> Int {
        blobFiles().reduce(0) { $0 + $1.size }
    }

    /// Re-hashes every file under `blobs/` and returns one line per problem: a file that
    /// is not where the layout puts a blob, an algorithm other than sha256, a file that
    /// cannot be read, or content that does not hash to the file's name. Empty when the
    /// whole cache is verified content.
    public func verifyBlobs() -> [String] {
        var problems: [String] = []
        for file in blobFiles() {
            guard let digest = file.digest else {
                problems.append("\(file): not a blob path")
                continue
            }
            guard digest.hasPrefix("sha256:") else {
                problems.append("\(file): cannot check algorithm of \(digest)")
                continue
            }
            do {
                let (actual, _) = try ContentDescriptor.sha256(ofFile: file.url)
                if actual != digest { problems.append("\(file): content hashes to \(actual)") }
            } catch {
                problems.append("\(file): unreadable: \(error)")
            }
        }
        return problems
    }

    /// Puts `contents` where the layout keeps `digest`, creating the shard directory.
    /// Meant for planting files the gateway did not write (e.g. a wrong one).
    public func plantBlob(_ contents: Data, as digest: String) throws {
        let url = blobPath(digest)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try contents.write(to: url)
    }

    // MARK: - tmp/

    /// Every regular file under `tmp/` with its size.
    public func temporaryFiles() -> [(name: String, size: Int)] {
        Self.regularFiles(under: temporaryDirectory).map { ($0.relative, $0.size) }
    }

    /// The total size of the files under `tmp/`.
    public func temporaryBytes() -> Int {
        temporaryFiles().reduce(0) { $0 + $1.size }
    }

    // MARK: - metadata.sqlite

    /// The rows of the `objects` table, read with python3's sqlite3 module (a separate
    /// connection; SQLite's WAL mode allows it while the gateway runs).
    public func objectRows() async throws -> [ObjectRow] {
        guard let python = ManagedProcess.which("python3") else { throw ManagedProcess.Failure("python3 is not installed") }
        let script = """
            import json, sqlite3, sys
            db = sqlite3.connect(sys.argv[1], timeout=10)
            rows = db.execute("SELECT digest, size, media_type, created_at, last_access FROM objects").fetchall()
            db.close()
            print(json.dumps(rows))
            """
        let result = try await ManagedProcess.run(python, arguments: ["-c", script, metadataURL.path], timeout: .seconds(30))
        guard result.succeeded else {
            throw ManagedProcess.Failure("reading \(metadataURL.path) failed (status \(result.status)): \(result.stderr)")
        }
        guard let rows = try JSONSerialization.jsonObject(with: result.stdout) as? [[Any]] else {
            throw ManagedProcess.Failure("unexpected output reading \(metadataURL.path): \(result.stdoutText)")
        }
        return rows.compactMap { row in
            guard row.count == 5, let digest = row[0] as? String else { return nil }
            func number(_ value: Any) -> Double { (value as? NSNumber)?.doubleValue ?? 0 }
            return ObjectRow(
                digest: digest, size: Int(number(row[1])), mediaType: row[2] as? String,
                createdAt: number(row[3]), lastAccess: number(row[4]))
        }
    }

    // MARK: - Helpers

    /// Regular files under `directory` at any depth: path relative to it, URL, size.
    static func regularFiles(under directory: URL) -> [(relative: String, url: URL, size: Int)] {
        let fm = FileManager.default
        guard let enumerator = fm.enumerator(atPath: directory.path) else { return [] }
        var out: [(String, URL, Int)] = []
        while let relative = enumerator.nextObject() as? String {
            let url = directory.appendingPathComponent(relative)
            // A file can vanish between listing and stat (a commit, an eviction): skip it.
            guard let attributes = try? fm.attributesOfItem(atPath: url.path),
                  attributes[.type] as? FileAttributeType == .typeRegular
            else { continue }
            out.append((relative, url, (attributes[.size] as? NSNumber)?.intValue ?? 0))
        }
        return out.sorted { $0.0 < $1.0 }
    }
}

/// Polls `condition` every `interval` until it holds or `timeout` has passed; returns
/// whether it held.
@discardableResult
public func eventually(
    timeout: Duration, interval: Duration = .milliseconds(100), _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: interval)
    }
}
