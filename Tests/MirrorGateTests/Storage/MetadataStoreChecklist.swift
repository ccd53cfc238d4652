import Foundation
import MirrorGateStorage
import RegistryModel
import Testing

/// What every ``MetadataStore`` must do, run against SQLite (``SQLiteMetadataStoreTests``) and
/// the shared PostgreSQL store (``PostgresMetadataStoreTests``) alike, each on a fresh store.
enum MetadataStoreChecklist {
    static func digest(_ fill: Character, _ algorithm: Digest.Algorithm = .sha256) -> Digest {
        Digest(algorithm: algorithm, hex: String(repeating: fill, count: algorithm.hexLength))
    }

    /// Whole-second dates round-trip exactly through every store's time columns.
    static let t1 = Date(timeIntervalSince1970: 1_700_000_000)
    static let t2 = Date(timeIntervalSince1970: 1_700_000_600)
    static let t3 = Date(timeIntervalSince1970: 1_700_003_600)

    static func tag(_ name: String = "latest", digest: Digest = digest("a"), at date: Date = t1, upstream: String = "gcr-mirror") -> TagRecord {
        TagRecord(
            registry: "docker.io", repository: "library/alpine", tag: name, digest: digest,
            mediaType: MediaType.ociIndex, checkedAt: date, upstream: upstream)
    }

    static func saveAndLoadTag(_ store: any MetadataStore) async throws {
        #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "latest") == nil)
        let record = tag()
        try await store.saveTag(record)
        #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "latest") == record)
        // The key is (registry, repository, tag).
        #expect(try await store.tag(registry: "ghcr.io", repository: "library/alpine", tag: "latest") == nil)
        #expect(try await store.tag(registry: "docker.io", repository: "library/busybox", tag: "latest") == nil)
        #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "3.19") == nil)
        #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "LATEST") == nil)
    }

    static func tagUpsert(_ store: any MetadataStore) async throws {
        try await store.saveTag(tag(digest: digest("a"), at: t1, upstream: "gcr-mirror"))
        let updated = TagRecord(
            registry: "docker.io", repository: "library/alpine", tag: "latest", digest: digest("b", .sha512),
            mediaType: MediaType.dockerManifestList, checkedAt: t2, upstream: "hub-anonymous")
        try await store.saveTag(updated)
        #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "latest") == updated)

        // Other tags are untouched by an upsert.
        let other = tag("3.19", digest: digest("c"))
        try await store.saveTag(other)
        try await store.saveTag(tag(digest: digest("d"), at: t3))
        #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "3.19") == other)
        #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "latest")?.digest == digest("d"))
    }

    static func saveAndLoadObjects(_ store: any MetadataStore) async throws {
        let layer = ObjectRecord(digest: digest("1"), size: 123_456_789_012, mediaType: nil, createdAt: t1, lastAccess: t1)
        let manifest = ObjectRecord(digest: digest("2", .sha512), size: 1234, mediaType: MediaType.ociManifest, createdAt: t1, lastAccess: t2)

        #expect(try await store.object(layer.digest) == nil)
        try await store.saveObject(layer)
        try await store.saveObject(manifest)
        #expect(try await store.object(layer.digest) == layer)
        #expect(try await store.object(manifest.digest) == manifest)
        // sha256 and sha512 digests with the same hex prefix are different objects.
        #expect(try await store.object(digest("2")) == nil)

        try await store.removeObject(layer.digest)
        #expect(try await store.object(layer.digest) == nil)
        #expect(try await store.object(manifest.digest) == manifest)
        try await store.removeObject(layer.digest)
    }

    static func objectUpsert(_ store: any MetadataStore) async throws {
        let d = digest("e")
        try await store.saveObject(ObjectRecord(digest: d, size: 10, mediaType: MediaType.dockerManifest, createdAt: t1, lastAccess: t1))
        // A later save updates size and last access, keeps the creation time, and keeps a known
        // media type when the new record has none.
        try await store.saveObject(ObjectRecord(digest: d, size: 11, mediaType: nil, createdAt: t2, lastAccess: t3))
        #expect(try await store.object(d) == ObjectRecord(digest: d, size: 11, mediaType: MediaType.dockerManifest, createdAt: t1, lastAccess: t3))

        try await store.saveObject(ObjectRecord(digest: d, size: 11, mediaType: MediaType.ociManifest, createdAt: t3, lastAccess: t3))
        #expect(try await store.object(d)?.mediaType == MediaType.ociManifest)
        #expect(try await store.object(d)?.createdAt == t1)
    }

    /// `reopen` gives a second store on the same data (a reopened file, another replica).
    static func linksAreScopedToRegistryAndRepositoryAndGoWithTheirObject(_ store: any MetadataStore, reopen: () throws -> any MetadataStore) async throws {
        let d = digest("c")
        try await store.saveObject(ObjectRecord(digest: d, size: 10, mediaType: nil, createdAt: t1, lastAccess: t1))
        #expect(try await store.isLinked(d, registry: "docker.io", repository: "private/secret") == false)
        try await store.link(d, registry: "docker.io", repository: "private/secret")
        try await store.link(d, registry: "docker.io", repository: "private/secret")  // idempotent
        #expect(try await store.isLinked(d, registry: "docker.io", repository: "private/secret"))
        #expect(try await store.isLinked(d, registry: "docker.io", repository: "library/alpine") == false)
        #expect(try await store.isLinked(d, registry: "ghcr.io", repository: "private/secret") == false)
        // Links survive reopening, and go with their object.
        let reopened = try reopen()
        #expect(try await reopened.isLinked(d, registry: "docker.io", repository: "private/secret"))
        try await reopened.removeObject(d)
        #expect(try await reopened.isLinked(d, registry: "docker.io", repository: "private/secret") == false)
    }

    static func aTagAnswerLinksItsDigest(_ store: any MetadataStore) async throws {
        try await store.saveTag(tag(digest: digest("d")))
        #expect(try await store.isLinked(digest("d"), registry: "docker.io", repository: "library/alpine"))
        #expect(try await store.isLinked(digest("d"), registry: "docker.io", repository: "library/busybox") == false)
    }

    /// Blobs cost only bandwidth to get back, manifests a pull of the budget: blobs go first.
    static func evictionCandidatesAreBlobsFirstThenManifestsEachOldestFirst(_ store: any MetadataStore) async throws {
        let oldManifest = ObjectRecord(digest: digest("1"), size: 1, mediaType: MediaType.ociManifest, createdAt: t1, lastAccess: t1)
        let newBlob = ObjectRecord(digest: digest("2"), size: 1, mediaType: nil, createdAt: t3, lastAccess: t3)
        let oldBlob = ObjectRecord(digest: digest("3"), size: 1, mediaType: nil, createdAt: t2, lastAccess: t2)
        let newManifest = ObjectRecord(digest: digest("4"), size: 1, mediaType: MediaType.ociIndex, createdAt: t3, lastAccess: t3)
        for record in [oldManifest, newBlob, oldBlob, newManifest] { try await store.saveObject(record) }
        let order = try await store.evictionCandidates(limit: 10).map(\.digest)
        #expect(order == [oldBlob.digest, newBlob.digest, oldManifest.digest, newManifest.digest])
        #expect(try await store.evictionCandidates(limit: 2).map(\.digest) == [oldBlob.digest, newBlob.digest])
    }

    /// Reads move access times forward only; sizes add up; every object is listed.
    static func touchUsageAndAllObjects(_ store: any MetadataStore) async throws {
        let a = ObjectRecord(digest: digest("5"), size: 100, mediaType: nil, createdAt: t1, lastAccess: t2)
        let b = ObjectRecord(digest: digest("6"), size: 23, mediaType: MediaType.ociManifest, createdAt: t1, lastAccess: t1)
        try await store.saveObject(a)
        try await store.saveObject(b)
        try await store.touch([a.digest: t1, b.digest: t3, digest("7"): t3])
        #expect(try await store.object(a.digest)?.lastAccess == t2, "an older read moved the access time back")
        #expect(try await store.object(b.digest)?.lastAccess == t3)
        #expect(try await store.object(digest("7")) == nil, "a read of an unknown object created it")
        try await store.touch([:])
        #expect(try await store.totalSize() == 123)
        let usage = try await store.usage()
        #expect(usage.objects == 2)
        #expect(usage.bytes == 123)
        #expect(try await store.allObjects() == [a.digest: 100, b.digest: 23])
    }

    static func subSecondDatesAreKeptToTheMillisecond(_ store: any MetadataStore) async throws {
        let now = Date()
        try await store.saveTag(tag(at: now))
        let loaded = try #require(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "latest"))
        #expect(abs(loaded.checkedAt.timeIntervalSince(now)) < 0.001)
    }

    static func concurrentSaves(_ store: any MetadataStore) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<50 {
                group.addTask {
                    try await store.saveTag(tag("t\(i)", at: Date(timeIntervalSince1970: Double(1_700_000_000 + i))))
                }
            }
            try await group.waitForAll()
        }
        for i in 0..<50 {
            #expect(try await store.tag(registry: "docker.io", repository: "library/alpine", tag: "t\(i)")?.checkedAt == Date(timeIntervalSince1970: Double(1_700_000_000 + i)))
        }
    }
}
