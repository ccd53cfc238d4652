import Foundation
import Logging
@testable import MirrorGateCore
@testable import MirrorGateS3
import MirrorGateStorage
import NIOCore
import RegistryModel
import Testing

/// The janitor's paged reconciliation (S3 mode) against a bucket in a real `moto_server`
/// (signatures checked), with pages of two keys so every case spans several pages.
@Suite(
    "CacheJanitor paged reconciliation against moto_server",
    .enabled(if: MotoServer.executable != nil, Comment(rawValue: MotoServer.skipMessage)), .motoServer(auth: true))
struct CacheJanitorPagedReconcileTests {
    var server: MotoServer { MotoServer.current! }

    static func record(_ digest: Digest, size: Int) -> ObjectRecord {
        let at = Date(timeIntervalSince1970: 1_700_000_000)
        return ObjectRecord(digest: digest, size: UInt64(size), mediaType: nil, createdAt: at, lastAccess: at)
    }

    @Test func rowsAndObjectsAgreeAfterOnePass() async throws {
        let fixture = try S3StoreFixture(server, listPageSize: 2)
        try await S3StoreFixture.using(fixture) { store throws in
            let metadata = try SQLiteMetadataStore(path: fixture.directory.path + "/metadata.sqlite")
            // Committed with its row.
            let kept = Array("kept".utf8)
            let keptDigest = try await S3StoreFixture.commit(kept, to: store)
            try await metadata.saveObject(Self.record(keptDigest, size: kept.count))
            // Uploaded, then the gateway died before the row (two of them, one a manifest).
            let orphan = S3TestSupport.randomBytes(40_000)
            let orphanDigest = try await S3StoreFixture.commit(orphan, to: store)
            let manifest = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.utf8)
            let manifestDigest = try await S3StoreFixture.commit(manifest, to: store)
            // An object whose bytes are not its digest's (written by something else).
            let forged = S3StoreFixture.digest(Array("the real content".utf8))
            _ = try await store.client.put(S3BlobStore.key(for: forged), bytes: ByteBuffer(string: "something else"))
            // A row whose object is gone, and a row that disagrees with its object's size.
            let goneDigest = S3StoreFixture.digest(Array("gone".utf8))
            try await metadata.saveObject(Self.record(goneDigest, size: 4))
            let resized = Array("resized".utf8)
            let resizedDigest = try await S3StoreFixture.commit(resized, to: store)
            try await metadata.saveObject(Self.record(resizedDigest, size: 999))

            let janitor = CacheJanitor(blobs: store, metadata: metadata, maxSize: 1 << 30, logger: S3StoreFixture.logger)
            let counts = try await janitor.reconcileInPages()
            #expect(counts == CacheJanitor.Reconciliation(listed: 5, adopted: 2, removed: 2, dropped: 1))

            let rows = try await metadata.allObjects()
            #expect(rows == [keptDigest: 4, orphanDigest: 40_000, manifestDigest: UInt64(manifest.count)])
            #expect(try await metadata.object(manifestDigest)?.mediaType == "application/vnd.oci.image.manifest.v1+json")
            #expect(try await metadata.object(orphanDigest)?.mediaType == nil)
            #expect(try await store.allBlobs() == rows)

            // A second pass finds nothing to do.
            #expect(try await janitor.reconcileInPages() == CacheJanitor.Reconciliation(listed: 3))
        }
    }

    /// In S3 mode the pass runs when the janitor service starts, beside its rounds, and stops
    /// with it.
    @Test func theServiceRunsThePassInTheBackground() async throws {
        let fixture = try S3StoreFixture(server, listPageSize: 2)
        try await S3StoreFixture.using(fixture) { store throws in
            let metadata = try SQLiteMetadataStore(path: fixture.directory.path + "/metadata.sqlite")
            var orphans: [Digest] = []
            for i in 0..<3 { orphans.append(try await S3StoreFixture.commit(Array("orphan \(i)".utf8), to: store)) }
            let janitor = CacheJanitor(
                blobs: store, metadata: metadata, maxSize: 1 << 30, interval: .milliseconds(50), reconcileInBackground: true,
                logger: S3StoreFixture.logger)
            let running = Task { try await janitor.run() }
            let deadline = ContinuousClock.now + .seconds(30)
            while try await metadata.allObjects().count < 3, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            running.cancel()
            try await running.value
            #expect(Set(try await metadata.allObjects().keys) == Set(orphans))
        }
    }
}
