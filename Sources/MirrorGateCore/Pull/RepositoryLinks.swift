import Foundation
import Logging
import MirrorGateStorage
import RegistryModel
import Synchronization

/// Which repositories are known to hold which content, in front of the object index.
///
/// A link is a fact an upstream stated ("this repository holds this digest"), so it stays true
/// after the object is evicted: positive answers are kept in memory (bounded), and the warm
/// path checks a link without touching the database. Answers that an object does not exist
/// in a repository are remembered briefly, so a client asking for random digests costs the
/// upstreams one round of HEADs per digest per ``absentFor``, not one per request.
final class RepositoryLinks: Sendable {
    struct Key: Hashable, Sendable {
        var registry: String
        var repository: String
        var digest: Digest
    }

    /// How long "not in this repository" is believed.
    static let absentFor: TimeInterval = 30
    /// Positive links kept in memory at most (the set is dropped and refilled beyond it).
    static let memoryCapacity = 200_000
    /// Negative answers kept at most.
    static let absentCapacity = 10_000

    let index: any ObjectIndex
    let logger: Logger
    private let known = Mutex<Set<Key>>([])
    private let absent = Mutex<[Key: Date]>([:])

    init(index: any ObjectIndex, logger: Logger) {
        self.index = index
        self.logger = logger
    }

    /// Whether `repository` of `registry` is known to hold `digest`.
    func isLinked(_ digest: Digest, registry: String, repository: String) async -> Bool {
        let key = Key(registry: registry, repository: repository, digest: digest)
        if known.withLock({ $0.contains(key) }) { return true }
        guard (try? await index.isLinked(digest, registry: registry, repository: repository)) == true else { return false }
        remember(key)
        return true
    }

    /// Records that `repository` of `registry` holds `digest`.
    func link(_ digest: Digest, registry: String, repository: String) async {
        let key = Key(registry: registry, repository: repository, digest: digest)
        absent.withLock { _ = $0.removeValue(forKey: key) }
        remember(key)
        do {
            try await index.link(digest, registry: registry, repository: repository)
        } catch {
            // The memory still knows; after a restart the object is confirmed again (a free HEAD).
            logger.error("could not store a repository link", metadata: ["digest": "\(digest)", "repository": "\(registry)/\(repository)", "error": "\(error)"])
        }
    }

    /// Remembers that no upstream of `registry` has `digest` in `repository`.
    func rememberAbsent(_ digest: Digest, registry: String, repository: String, now: Date = Date()) {
        absent.withLock { map in
            if map.count >= Self.absentCapacity {
                map = map.filter { $0.value > now }
                if map.count >= Self.absentCapacity { map.removeAll(keepingCapacity: true) }
            }
            map[Key(registry: registry, repository: repository, digest: digest)] = now.addingTimeInterval(Self.absentFor)
        }
    }

    /// Whether `digest` was recently found absent from `repository`.
    func isAbsent(_ digest: Digest, registry: String, repository: String, now: Date = Date()) -> Bool {
        absent.withLock { map in
            let key = Key(registry: registry, repository: repository, digest: digest)
            guard let until = map[key] else { return false }
            if until <= now {
                map[key] = nil
                return false
            }
            return true
        }
    }

    private func remember(_ key: Key) {
        known.withLock { set in
            if set.count >= Self.memoryCapacity { set.removeAll(keepingCapacity: true) }
            set.insert(key)
        }
    }
}
