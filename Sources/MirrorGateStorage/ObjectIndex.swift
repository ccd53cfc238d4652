import Foundation
import RegistryModel

/// The cached objects (blobs and manifests, stored once by digest) and which repositories are
/// known to hold each.
///
/// Content is stored once, but it is readable only through a `(registry, repository)` linked
/// to it: a link records that an upstream of that registry served or confirmed the object
/// under that repository. Merge rules:
/// - ``saveObject(_:)`` is an upsert that keeps an earlier media type when the new record has
///   none, and takes the new size and access time;
/// - ``touch(_:)`` only moves an access time forward (the later of the two wins);
/// - ``link(_:registry:repository:)`` is idempotent; links go with their object in
///   ``removeObject(_:)``, and survive restarts and crashes like the rest.
public protocol ObjectIndex: Sendable {
    func object(_ digest: Digest) async throws -> ObjectRecord?
    func saveObject(_ record: ObjectRecord) async throws
    /// Removes the object's row and every link to it (eviction, repair).
    func removeObject(_ digest: Digest) async throws

    /// Records that `repository` of `registry` holds `digest`.
    func link(_ digest: Digest, registry: String, repository: String) async throws
    /// Whether `repository` of `registry` is known to hold `digest`.
    func isLinked(_ digest: Digest, registry: String, repository: String) async throws -> Bool

    /// Records reads of cached objects (batched by the caller).
    func touch(_ accesses: [Digest: Date]) async throws
    /// Sum of the sizes of every cached object.
    func totalSize() async throws -> UInt64
    /// Number of cached objects and the sum of their sizes.
    func usage() async throws -> (objects: Int, bytes: UInt64)
    /// Eviction candidates, cheapest to get back first: blobs (which cost only bandwidth)
    /// least recently used first, then manifests (which cost a pull of the upstream's
    /// budget) least recently used first.
    func evictionCandidates(limit: Int) async throws -> [ObjectRecord]
    /// Every object's digest and size (for start-up reconciliation).
    func allObjects() async throws -> [Digest: UInt64]
}
