import Foundation
import MirrorGateStorage
import Testing

@Suite("StorageError")
struct StorageErrorTests {
    /// What clients, `/readyz` and the status page see: the operation and the errno class,
    /// never the path the log keeps.
    @Test func summaryNamesTheErrnoClassNotThePath() {
        let full = StorageError.system("write", errno: ENOSPC)
        #expect(full.summary == "write: ENOSPC, No space left on device")
        #expect(full.code == .resourceExhausted)
        #expect(StorageError.system("open", errno: EROFS).summary == "open: EROFS, Read-only file system")
        #expect(StorageError.system("open", errno: 9999).summary.hasPrefix("open: errno 9999"))
        let database = StorageError.metadata("disk I/O error at /srv/cache/metadata.sqlite")
        #expect(database.summary == "metadata store: failed")
        #expect(!database.description.contains("/srv"))
        #expect(database.logDescription.contains("/srv/cache/metadata.sqlite"))
    }
}
