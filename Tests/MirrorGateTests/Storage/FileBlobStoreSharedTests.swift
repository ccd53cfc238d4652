import Foundation
import Logging
@testable import MirrorGateStorage
import RegistryModel
import Testing

/// Several gateways on one `storage.path` (a ReadWriteMany volume): each spools in a directory
/// of its own, so a replica that starts never deletes what another one is fetching, and only
/// spools a dead replica abandoned long ago are cleaned up.
@Suite("FileBlobStore shared by replicas")
struct FileBlobStoreSharedTests {
    typealias T = FileBlobStoreTests

    @Test func aStartingReplicaLeavesAnotherReplicasSpoolsAlone() async throws {
        let dir = try TemporaryDirectory("shared-spools")
        defer { dir.cleanUp() }
        let a = try FileBlobStore(root: dir.path, spoolName: "a", logger: T.logger)
        let content = T.bytes(300_000)
        let digest = T.digest(content)
        let inFlight = try await a.makeSpool(for: digest)
        try await T.write(inFlight, content)
        #expect(inFlight.path.hasPrefix(a.root + "/tmp/replicas/a/"))

        // A dead replica's leftover, untouched for two hours, and a recent one.
        let dead = dir.path + "/tmp/replicas/gone"
        try FileManager.default.createDirectory(atPath: dead, withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: dead + "/old", contents: Data([1, 2, 3])))
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-7200)], ofItemAtPath: dead + "/old")
        #expect(FileManager.default.createFile(atPath: dead + "/recent", contents: Data([4])))

        let b = try FileBlobStore(root: dir.path, spoolName: "b", logger: T.logger)
        #expect(FileManager.default.fileExists(atPath: inFlight.path), "B's start deleted A's in-flight spool")
        #expect(!FileManager.default.fileExists(atPath: dead + "/old"))
        #expect(FileManager.default.fileExists(atPath: dead + "/recent"))

        // A's commit is a rename into the shared tree: B sees the blob whole.
        try await a.commit(inFlight, verifiedAs: digest)
        #expect(try await b.size(of: digest) == UInt64(content.count))
        let reader = try #require(try await b.reader(for: digest, range: nil))
        #expect(try await T.drain(reader) == content)

        // A replica restarting under its name removes its own leftovers only.
        let leftover = try await b.makeSpool(for: digest)
        try await T.write(leftover, [9, 9, 9])
        _ = try FileBlobStore(root: dir.path, spoolName: "b", logger: T.logger)
        #expect(!FileManager.default.fileExists(atPath: leftover.path))
        #expect(FileManager.default.fileExists(atPath: dir.path + "/tmp/replicas/a"))
    }
}
