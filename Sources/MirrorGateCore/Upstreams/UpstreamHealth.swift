import MirrorGateConfig
import MirrorGateUpstream

/// The circuit breakers of every upstream, keyed by ``Upstream/ID``.
final class UpstreamHealth: Sendable {
    private let breakers: [Upstream.ID: CircuitBreaker]

    init(config: GatewayConfig) {
        var map: [Upstream.ID: CircuitBreaker] = [:]
        let timeout = config.health.timeout
        for registry in config.registries {
            for upstream in registry.upstreams {
                map[Upstream.ID(registry: registry.key, name: upstream.name)] = CircuitBreaker(
                    failureThreshold: config.health.failureThreshold,
                    baseCooldown: max(timeout, .seconds(1)),
                    maxCooldown: max(config.health.interval * 4, .seconds(60)),
                    trialTimeout: max(timeout * 3, .seconds(5)))
            }
        }
        breakers = map
    }

    func breaker(_ upstream: Upstream) -> CircuitBreaker? {
        breakers[upstream.id]
    }

    /// Whether a request may go to `upstream` now (takes the half-open trial slot if due).
    func admit(_ upstream: Upstream, now: ContinuousClock.Instant = .now) -> Bool {
        breaker(upstream)?.admit(now: now) ?? true
    }
}
