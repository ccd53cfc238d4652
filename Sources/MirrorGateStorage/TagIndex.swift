/// What the gateway last learned about each tag: `(registry, repository, tag)` → digest.
///
/// Merge rule: ``saveTag(_:)`` is an upsert; the record saved last replaces the earlier one
/// (a shared implementation keeps the one with the newer `checkedAt`, so a slow replica cannot
/// roll a tag back).
public protocol TagIndex: Sendable {
    /// The last answer for the tag, or nil when it was never resolved.
    func tag(registry: String, repository: String, tag: String) async throws -> TagRecord?
    /// Stores an answer an upstream just gave. A tag answer also links its digest to the
    /// repository (``ObjectIndex/link(_:registry:repository:)``): the upstream said that
    /// repository holds it.
    func saveTag(_ record: TagRecord) async throws
}
