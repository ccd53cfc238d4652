import MirrorGateStorage

/// What a blob fetch tells the cache's keeper: a blob was committed (enforce `max_size`), or
/// storage failed (switch to pass-through). ``CacheJanitor`` is the implementation; the
/// fetcher takes it at construction, so nothing is wired after the fact.
protocol CacheEvents: Sendable {
    func committed() async
    func storageFailed(_ error: StorageError)
}

extension CacheJanitor: CacheEvents {
    func committed() async { await enforceCap() }
}
