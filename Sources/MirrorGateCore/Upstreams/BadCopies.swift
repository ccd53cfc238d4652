import Foundation
import MirrorGateUpstream
import RegistryModel
import Synchronization

/// Upstreams that sent content not matching its digest, per object, for a while.
///
/// A mismatch is a fault of one upstream's copy of one object, not of the upstream: the walk
/// stops asking that upstream for that object (other objects and other upstreams are
/// unaffected), so a bad copy is never fetched from there again until it may have been fixed.
final class BadCopies: Sendable {
    /// How long a bad copy is remembered.
    static let memory: TimeInterval = 600
    /// Entries kept at most (oldest dropped first), so hostile upstreams cannot grow it.
    static let capacity = 4096

    private let entries = Mutex<[Key: Date]>([:])

    struct Key: Hashable {
        var upstream: Upstream.ID
        var digest: Digest
    }

    func remember(_ upstream: Upstream.ID, _ digest: Digest, now: Date = Date()) {
        entries.withLock { map in
            if map.count >= Self.capacity {
                for (key, until) in map where until <= now { map[key] = nil }
                if map.count >= Self.capacity, let oldest = map.min(by: { $0.value < $1.value }) { map[oldest.key] = nil }
            }
            map[Key(upstream: upstream, digest: digest)] = now.addingTimeInterval(Self.memory)
        }
    }

    /// Until when `upstream`'s copy of `digest` is avoided; nil when it is not.
    func until(_ upstream: Upstream.ID, _ digest: Digest, now: Date = Date()) -> Date? {
        entries.withLock { map in
            let key = Key(upstream: upstream, digest: digest)
            guard let until = map[key] else { return nil }
            if until <= now {
                map[key] = nil
                return nil
            }
            return until
        }
    }
}
