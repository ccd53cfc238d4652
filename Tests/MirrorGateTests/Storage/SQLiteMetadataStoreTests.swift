import Foundation
import MirrorGateStorage
import RegistryModel
import Testing

@Suite("SQLiteMetadataStore")
struct SQLiteMetadataStoreTests {
    typealias Check = MetadataStoreChecklist

    /// Runs `body` on a fresh store in its own directory.
    func withStore(_ label: String, _ body: (SQLiteMetadataStore, String) async throws -> Void) async throws {
        let dir = try TemporaryDirectory(label)
        defer { dir.cleanUp() }
        let path = dir.path + "/metadata.sqlite"
        try await body(try SQLiteMetadataStore(path: path), path)
    }

    @Test func saveAndLoadTag() async throws {
        try await withStore("sqlite-tag") { store, _ in try await Check.saveAndLoadTag(store) }
    }

    @Test func tagUpsert() async throws {
        try await withStore("sqlite-tag-upsert") { store, _ in try await Check.tagUpsert(store) }
    }

    @Test func saveAndLoadObjects() async throws {
        try await withStore("sqlite-object") { store, _ in try await Check.saveAndLoadObjects(store) }
    }

    @Test func objectUpsert() async throws {
        try await withStore("sqlite-object-upsert") { store, _ in try await Check.objectUpsert(store) }
    }

    @Test func linksAreScopedToRegistryAndRepositoryAndGoWithTheirObject() async throws {
        try await withStore("sqlite-links") { store, path in
            try await Check.linksAreScopedToRegistryAndRepositoryAndGoWithTheirObject(store) { try SQLiteMetadataStore(path: path) }
        }
    }

    @Test func aTagAnswerLinksItsDigest() async throws {
        try await withStore("sqlite-tag-links") { store, _ in try await Check.aTagAnswerLinksItsDigest(store) }
    }

    @Test func evictionCandidatesAreBlobsFirstThenManifestsEachOldestFirst() async throws {
        try await withStore("sqlite-eviction") { store, _ in try await Check.evictionCandidatesAreBlobsFirstThenManifestsEachOldestFirst(store) }
    }

    @Test func touchUsageAndAllObjects() async throws {
        try await withStore("sqlite-touch") { store, _ in try await Check.touchUsageAndAllObjects(store) }
    }

    @Test func subSecondDatesAreKeptToTheMillisecond() async throws {
        try await withStore("sqlite-dates") { store, _ in try await Check.subSecondDatesAreKeptToTheMillisecond(store) }
    }

    @Test func concurrentSaves() async throws {
        try await withStore("sqlite-concurrent") { store, _ in try await Check.concurrentSaves(store) }
    }

    @Test func survivesReopening() async throws {
        let dir = try TemporaryDirectory("sqlite-reopen")
        defer { dir.cleanUp() }
        let path = dir.path + "/metadata.sqlite"
        let tag = Check.tag()
        let object = ObjectRecord(digest: Check.digest("f"), size: 42, mediaType: MediaType.ociIndex, createdAt: Check.t1, lastAccess: Check.t2)
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
            try await store.saveTag(Check.tag(digest: Check.digest("9"), at: Check.t3))
        }
        let store = try SQLiteMetadataStore(path: path)
        #expect(try await store.tag(registry: tag.registry, repository: tag.repository, tag: tag.tag)?.digest == Check.digest("9"))
        #expect(try await store.object(object.digest) == object)
    }

    @Test func twoConnectionsSeeEachOthersWrites() async throws {
        let dir = try TemporaryDirectory("sqlite-two")
        defer { dir.cleanUp() }
        let path = dir.path + "/metadata.sqlite"
        let a = try SQLiteMetadataStore(path: path)
        let b = try SQLiteMetadataStore(path: path)
        try await a.saveTag(Check.tag())
        #expect(try await b.tag(registry: "docker.io", repository: "library/alpine", tag: "latest") == Check.tag())
    }

    @Test func unopenableDatabaseThrows() throws {
        let dir = try TemporaryDirectory("sqlite-bad")
        defer { dir.cleanUp() }
        #expect(throws: StorageError.self) { try SQLiteMetadataStore(path: dir.path + "/missing-directory/metadata.sqlite") }
        #expect(throws: StorageError.self) { try SQLiteMetadataStore(path: dir.path) }
    }
}
