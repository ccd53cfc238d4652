import Foundation
import Logging
import MirrorGateConfig
import MirrorGateStorage
import MirrorGateUpstream
import RegistryModel

/// The upstreams of every registry with what gates them: circuit breakers, the budget ledger
/// and remembered bad copies. Requests go out only through an ``UpstreamWalk`` it hands out.
public final class UpstreamPool: Sendable {
    let client: UpstreamClient
    let router: UpstreamRouter
    let health: UpstreamHealth
    let ledger: any BudgetLedger
    let badCopies: BadCopies
    let logger: Logger
    private let budgetKeys: [Upstream.ID: BudgetKey]

    init(client: UpstreamClient, router: UpstreamRouter, health: UpstreamHealth, ledger: any BudgetLedger, logger: Logger) {
        self.client = client
        self.router = router
        self.health = health
        self.ledger = ledger
        self.logger = logger
        self.badCopies = BadCopies()
        var keys: [Upstream.ID: BudgetKey] = [:]
        for upstream in router.all { keys[upstream.id] = BudgetKey(upstream: upstream.config) }
        self.budgetKeys = keys
    }

    /// A walk over `registry`'s upstreams for `purpose`, in configured order.
    func walk(registry: String, purpose: UpstreamRouter.Purpose = .content, ask: UpstreamAsk, repository: RepositoryName, excluding: Set<Upstream.ID> = []) -> UpstreamWalk {
        UpstreamWalk(pool: self, candidates: router.candidates(registry: registry, purpose: purpose), ask: ask, repository: repository, excluding: excluding)
    }

    /// The budget `upstream` spends from.
    func budgetKey(_ upstream: Upstream) -> BudgetKey? { budgetKeys[upstream.id] }

    /// The budget of `upstream` now, for status output.
    public func budgetStatus(_ upstream: Upstream, now: Date = Date()) async -> BudgetStatus? {
        guard let key = budgetKey(upstream) else { return nil }
        return await ledger.status(key, now: now)
    }

    func recordSuccess(_ upstream: Upstream) {
        health.breaker(upstream)?.recordSuccess()
    }

    /// Counts a failure against `upstream`'s circuit.
    func recordFailure(_ upstream: Upstream, _ reason: String) {
        if health.breaker(upstream)?.recordFailure(reason) == true {
            logger.warning("circuit opened: upstream skipped until its cool-down ends", metadata: [
                "registry": "\(upstream.registry)", "upstream": "\(upstream.name)", "reason": "\(reason)",
            ])
        }
    }
}

extension BudgetKey {
    /// Upstreams with the same origin, base path and user share a budget (Hub counts per
    /// account or source address).
    public init(upstream: UpstreamConfig) {
        self.init("\(upstream.url.origin)\(upstream.url.basePath)|\(upstream.username ?? "anonymous")")
    }

    /// Every budget of `config` with its configured limit (the first upstream of a key that
    /// configures one sets it).
    public static func limits(_ config: GatewayConfig) -> [BudgetKey: BudgetLimit?] {
        var limits: [BudgetKey: BudgetLimit?] = [:]
        for registry in config.registries {
            for upstream in registry.upstreams {
                let key = BudgetKey(upstream: upstream)
                let configured = upstream.budget.map { BudgetLimit(pulls: $0.pulls, window: $0.window.seconds) }
                if case .some(.some) = limits[key] { continue }
                limits[key] = configured
            }
        }
        return limits
    }
}
