import Synchronization

/// A manifest GET that an upstream counted as a pull, as the pull ledger records it.
///
/// Requests that share one fetch (single-flight) receive the same value; ``claim()`` lets
/// exactly one of them record the spend, so twenty clients waiting on one GET count one spend.
public final class ManifestSpend: Sendable {
    /// The upstream's configured name.
    public let upstream: String
    /// Whether the upstream meters pulls (a configured `budget`, or a limit it announced in
    /// `ratelimit-*` headers). A GET on an upstream that meters nothing spends no quota.
    public let metered: Bool
    private let claimed = Atomic<Bool>(false)

    public init(upstream: String, metered: Bool) {
        self.upstream = upstream
        self.metered = metered
    }

    /// True for the first caller only.
    public func claim() -> Bool {
        !claimed.exchange(true, ordering: .relaxed)
    }
}
