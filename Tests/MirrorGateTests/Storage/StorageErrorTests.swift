import Foundation
import MirrorGateStorage
import Testing

@Suite("StorageError")
struct StorageErrorTests {
    /// What clients, `/readyz` and the status page see: the operation and the errno class,
    /// never the path the log keeps.
    @Test func summaryNamesTheErrnoClassNotThePath() {
        let full = StorageError.io(operation: "write", path: "/srv/cache/tmp/sha256-abc", errno: ENOSPC)
        #expect(full.summary == "write: ENOSPC, No space left on device")
        #expect(!full.summary.contains("/srv"))
        #expect(full.description.contains("/srv/cache/tmp/sha256-abc"))
        #expect(StorageError.io(operation: "open", path: "/x", errno: EROFS).summary == "open: EROFS, Read-only file system")
        #expect(StorageError.io(operation: "open", path: "/x", errno: 9999).summary.hasPrefix("open: errno 9999"))
        #expect(StorageError.metadata("disk I/O error at /srv/cache/metadata.sqlite").summary == "metadata store failed")
    }
}
