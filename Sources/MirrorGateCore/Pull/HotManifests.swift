import Foundation
import MirrorGateStorage
import NIOCore
import RegistryModel
import Synchronization

/// Hot tags and small manifests in memory, in front of the metadata store, so that a warm
/// manifest request makes no database query and no thread hop: the tag index's answers (a
/// few hundred bytes each, bounded in number) and manifest bodies (bounded in bytes).
///
/// Invalidation: a manifest is content-addressed and verified, so a cached body is never
/// wrong; it is dropped when the janitor evicts the object (``forgetBody(_:)``, wired in
/// ``PullService``), so what this copy serves is what the cache holds and `storage.max_size`
/// eviction takes it out of service (a `mirrorgate gc` in another process cannot reach this
/// copy; it is still the same verified bytes). A tag answer is replaced whenever this gateway
/// saves a newer one (a revalidation that saw the tag move). The index is per process: an
/// answer another replica saved reaches this one when this one's own answer is past
/// `tags.refresh_after` (the background revalidation reads the shared index first), so across
/// replicas a moved tag is served stale for at most `refresh_after`, as within one replica
/// before its own revalidation; ``forget(_:)`` is for a shared store that announces changes.
final class HotManifests: Sendable {
    struct TagKey: Hashable, Sendable {
        var registry: String
        var repository: String
        var tag: String
    }

    struct Body: Sendable {
        var mediaType: String
        var bytes: ByteBuffer
    }

    /// Tag answers kept at most.
    let tagCapacity: Int
    /// Manifest bytes kept at most.
    let byteCapacity: Int

    private struct Entry: Sendable {
        var body: Body
        /// Second chance: set on every hit, cleared by a sweep; a sweep evicts what is clear.
        var used: Bool
    }

    private struct State: Sendable {
        var tags: [TagKey: TagRecord] = [:]
        var bodies: [Digest: Entry] = [:]
        var bytes = 0
    }

    private let state = Mutex(State())

    init(tagCapacity: Int = 100_000, byteCapacity: Int = 64 << 20) {
        self.tagCapacity = tagCapacity
        self.byteCapacity = byteCapacity
    }

    // MARK: Tags

    func tag(_ key: TagKey) -> TagRecord? {
        state.withLock { $0.tags[key] }
    }

    /// Keeps `record` unless a newer answer for the tag is already here.
    func remember(_ record: TagRecord) {
        let key = TagKey(registry: record.registry, repository: record.repository, tag: record.tag)
        state.withLock { s in
            if let known = s.tags[key], known.checkedAt > record.checkedAt { return }
            if s.tags[key] == nil, s.tags.count >= tagCapacity { s.tags.removeAll(keepingCapacity: true) }
            s.tags[key] = record
        }
    }

    func forget(_ key: TagKey) {
        _ = state.withLock { $0.tags.removeValue(forKey: key) }
    }

    // MARK: Manifest bodies

    func body(_ digest: Digest) -> Body? {
        state.withLock { s in
            guard var entry = s.bodies[digest] else { return nil }
            if !entry.used {
                entry.used = true
                s.bodies[digest] = entry
            }
            return entry.body
        }
    }

    func remember(_ body: Body, for digest: Digest) {
        let size = body.bytes.readableBytes
        guard size <= byteCapacity / 16 else { return }
        state.withLock { s in
            if let old = s.bodies[digest] { s.bytes -= old.body.bytes.readableBytes }
            s.bodies[digest] = Entry(body: body, used: true)
            s.bytes += size
            // Over budget: sweep, clearing the second-chance bit and evicting what had none,
            // until back under.
            while s.bytes > byteCapacity, !s.bodies.isEmpty {
                for (key, entry) in s.bodies where s.bytes > byteCapacity {
                    if entry.used {
                        s.bodies[key]!.used = false
                    } else if key != digest {
                        s.bytes -= entry.body.bytes.readableBytes
                        s.bodies[key] = nil
                    }
                }
            }
        }
    }

    /// Drops the body of `digest` (evicted from the cache).
    func forgetBody(_ digest: Digest) {
        state.withLock { s in
            guard let old = s.bodies.removeValue(forKey: digest) else { return }
            s.bytes -= old.body.bytes.readableBytes
        }
    }

    /// Bytes of manifest bodies held now.
    var heldBytes: Int { state.withLock { $0.bytes } }
}
