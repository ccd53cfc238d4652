import Foundation
import MirrorGateStorage
import RegistryModel
import Testing

@Suite("SQLiteMetadataStore")
struct SQLiteMetadataStoreTests {
    static func digest(_ fill: Character, _ algorithm: Digest.Algorithm = .sha256) -> Digest {
        Digest(algorithm: algorithm, hex: String(repeating: fill, count: algorithm.hexLength))
    }

    /// Whole-second dates round-trip exactly through the REAL columns.
    static let t1 = Date(timeIntervalSince1970: 1_700_000_000)
    static let t2 = Date(timeIntervalSince1970: 1_700_000_600)
    static let t3 = Date(timeIntervalSince1970: 1_700_003_600)

    static func tag(_ name: String = "latest", digest: Digest = digest("a"), at date: Date = t1, upstream: String = "gcr-mirror") -> TagRecord {
        TagRecord(
            registry: "docker.io", repository: "library/alpine", tag: name, digest: digest,
            mediaType: MediaType.ociIndex, checkedAt: date, upstream: upstream)
    }

    @Test func saveAndLoadTag() async throws {
        let dir = try TemporaryDirectory("sqlite-tag")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")

        #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "latest") == nil)
        let record = Self.tag()
        try await store.saveTag(record)
        #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "latest") == record)
        // The key is (registry, repository, tag).
        #expect(try await store.tag(registry: "ghcr.io", repository: "library/alpine", tag: "latest") == nil)
        #expect(try await store.tag(registry: "docker.io", repository: "library/busybox", tag: "latest") == nil)
        #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "3.19") == nil)
        #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "LATEST") == nil)
    }

    @Test func tagUpsert() async throws {
        let dir = try TemporaryDirectory("sqlite-tag-upsert")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        try await store.saveTag(Self.tag(digest: Self.digest("a"), at: Self.t1, upstream: "gcr-mirror"))
        let updated = TagRecord(
            registry: "docker.io", repository: "library/alpine", tag: "latest", digest: Self.digest("b", .sha512),
            mediaType: MediaType.dockerManifestList, checkedAt: Self.t2, upstream: "hub-anonymous")
        try await store.saveTag(updated)
        #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "latest") == updated)

        // Other tags are untouched by an upsert.
        let other = Self.tag("3.19", digest: Self.digest("c"))
        try await store.saveTag(other)
        try await store.saveTag(Self.tag(digest: Self.digest("d"), at: Self.t3))
        #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "3.19") == other)
        #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "latest")?.digest == Self.digest("d"))
    }

    @Test func saveAndLoadObjects() async throws {
        let dir = try TemporaryDirectory("sqlite-object")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        let layer = ObjectRecord(digest: Self.digest("1"), size: 123_456_789_012, mediaType: nil, createdAt: Self.t1, lastAccess: Self.t1)
        let manifest = ObjectRecord(digest: Self.digest("2", .sha512), size: 1234, mediaType: MediaType.ociManifest, createdAt: Self.t1, lastAccess: Self.t2)

        #expect(try await store.object(layer.digest) == nil)
        try await store.saveObject(layer)
        try await store.saveObject(manifest)
        #expect(try await store.object(layer.digest) == layer)
        #expect(try await store.object(manifest.digest) == manifest)
        // sha256 and sha512 digests with the same hex prefix are different objects.
        #expect(try await store.object(Self.digest("2")) == nil)

        try await store.removeObject(layer.digest)
        #expect(try await store.object(layer.digest) == nil)
        #expect(try await store.object(manifest.digest) == manifest)
        try await store.removeObject(layer.digest)
    }

    @Test func objectUpsert() async throws {
        let dir = try TemporaryDirectory("sqlite-object-upsert")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        let digest = Self.digest("e")
        try await store.saveObject(ObjectRecord(digest: digest, size: 10, mediaType: MediaType.dockerManifest, createdAt: Self.t1, lastAccess: Self.t1))
        // A later save updates size and last access, keeps the creation time, and keeps a known
        // media type when the new record has none.
        try await store.saveObject(ObjectRecord(digest: digest, size: 11, mediaType: nil, createdAt: Self.t2, lastAccess: Self.t3))
        #expect(try await store.object(digest) == ObjectRecord(digest: digest, size: 11, mediaType: MediaType.dockerManifest, createdAt: Self.t1, lastAccess: Self.t3))

        try await store.saveObject(ObjectRecord(digest: digest, size: 11, mediaType: MediaType.ociManifest, createdAt: Self.t3, lastAccess: Self.t3))
        #expect(try await store.object(digest)?.mediaType == MediaType.ociManifest)
        #expect(try await store.object(digest)?.createdAt == Self.t1)
    }

    @Test func linksAreScopedToRegistryAndRepositoryAndGoWithTheirObject() async throws {
        let dir = try TemporaryDirectory("sqlite-links")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        let d = Self.digest("c")
        try await store.saveObject(ObjectRecord(digest: d, size: 10, mediaType: nil, createdAt: Self.t1, lastAccess: Self.t1))
        #expect(try await store.isLinked(d, registry: "docker.io", repository: "private/secret") == false)
        try await store.link(d, registry: "docker.io", repository: "private/secret")
        try await store.link(d, registry: "docker.io", repository: "private/secret")  // idempotent
        #expect(try await store.isLinked(d, registry: "docker.io", repository: "private/secret"))
        #expect(try await store.isLinked(d, registry: "docker.io", repository: "library/alpine") == false)
        #expect(try await store.isLinked(d, registry: "ghcr.io", repository: "private/secret") == false)
        // Links survive reopening, and go with their object.
        let reopened = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        #expect(try await reopened.isLinked(d, registry: "docker.io", repository: "private/secret"))
        try await reopened.removeObject(d)
        #expect(try await reopened.isLinked(d, registry: "docker.io", repository: "private/secret") == false)
    }

    @Test func aTagAnswerLinksItsDigest() async throws {
        let dir = try TemporaryDirectory("sqlite-tag-links")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        try await store.saveTag(Self.tag(digest: Self.digest("d")))
        #expect(try await store.isLinked(Self.digest("d"), registry: "docker.io", repository: "library/alpine"))
        #expect(try await store.isLinked(Self.digest("d"), registry: "docker.io", repository: "library/busybox") == false)
    }

    /// Blobs cost only bandwidth to get back, manifests a pull of the budget: blobs go first.
    @Test func evictionCandidatesAreBlobsFirstThenManifestsEachOldestFirst() async throws {
        let dir = try TemporaryDirectory("sqlite-eviction")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        let oldManifest = ObjectRecord(digest: Self.digest("1"), size: 1, mediaType: MediaType.ociManifest, createdAt: Self.t1, lastAccess: Self.t1)
        let newBlob = ObjectRecord(digest: Self.digest("2"), size: 1, mediaType: nil, createdAt: Self.t3, lastAccess: Self.t3)
        let oldBlob = ObjectRecord(digest: Self.digest("3"), size: 1, mediaType: nil, createdAt: Self.t2, lastAccess: Self.t2)
        let newManifest = ObjectRecord(digest: Self.digest("4"), size: 1, mediaType: MediaType.ociIndex, createdAt: Self.t3, lastAccess: Self.t3)
        for record in [oldManifest, newBlob, oldBlob, newManifest] { try await store.saveObject(record) }
        let order = try await store.evictionCandidates(limit: 10).map(\.digest)
        #expect(order == [oldBlob.digest, newBlob.digest, oldManifest.digest, newManifest.digest])
    }

    @Test func survivesReopening() async throws {
        let dir = try TemporaryDirectory("sqlite-reopen")
        defer { dir.cleanUp() }
        let path = dir.path + "/metadata.sqlite"
        let tag = Self.tag()
        let object = ObjectRecord(digest: Self.digest("f"), size: 42, mediaType: MediaType.ociIndex, createdAt: Self.t1, lastAccess: Self.t2)
        do {
            let store = try SQLiteMetadataStore(path: path)
            try await store.saveTag(tag)
            try await store.saveObject(object)
        }
        #expect(FileManager.default.fileExists(atPath: path))
        do {
            // Migrations run again on an existing database without harm.
            let store = try SQLiteMetadataStore(path: path)
            #expect(try await store.tag(registry: tag.registry, repository: tag.repository, tag: tag.tag) == tag)
            #expect(try await store.object(object.digest) == object)
            try await store.saveTag(Self.tag(digest: Self.digest("9"), at: Self.t3))
        }
        let store = try SQLiteMetadataStore(path: path)
        #expect(try await store.tag(registry: tag.registry, repository: tag.repository, tag: tag.tag)?.digest == Self.digest("9"))
        #expect(try await store.object(object.digest) == object)
    }

    @Test func twoConnectionsSeeEachOthersWrites() async throws {
        let dir = try TemporaryDirectory("sqlite-two")
        defer { dir.cleanUp() }
        let path = dir.path + "/metadata.sqlite"
        let a = try SQLiteMetadataStore(path: path)
        let b = try SQLiteMetadataStore(path: path)
        try await a.saveTag(Self.tag())
        #expect(try await b.tag(registry: "docker.io", repository: "library/alpine", tag: "latest") == Self.tag())
    }

    @Test func subSecondDatesAreKeptToTheMillisecond() async throws {
        let dir = try TemporaryDirectory("sqlite-dates")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        let now = Date()
        try await store.saveTag(Self.tag(at: now))
        let loaded = try #require(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "latest"))
        #expect(abs(loaded.checkedAt.timeIntervalSince(now)) < 0.001)
    }

    @Test func concurrentSaves() async throws {
        let dir = try TemporaryDirectory("sqlite-concurrent")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/metadata.sqlite")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<50 {
                group.addTask {
                    try await store.saveTag(Self.tag("t\(i)", at: Date(timeIntervalSince1970: Double(1_700_000_000 + i))))
                }
            }
            try await group.waitForAll()
        }
        for i in 0..<50 {
            #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "t\(i)")?.checkedAt == Date(timeIntervalSince1970: Double(1_700_000_000 + i)))
        }
    }

    @Test func unopenableDatabaseThrows() throws {
        let dir = try TemporaryDirectory("sqlite-bad")
        defer { dir.cleanUp() }
        #expect(throws: StorageError.self) { try SQLiteMetadataStore(path: dir.path + "/missing-directory/metadata.sqlite") }
        #expect(throws: StorageError.self) { try SQLiteMetadataStore(path: dir.path) }
    }
}
