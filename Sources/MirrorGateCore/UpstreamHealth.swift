import MirrorGateConfig
import MirrorGateUpstream

/// The circuit breakers of every upstream, keyed by registry and upstream name.
public final class UpstreamHealth: Sendable {
    private let breakers: [String: CircuitBreaker]

    public init(config: GatewayConfig) {
        var map: [String: CircuitBreaker] = [:]
        let timeout = config.health.timeout
        for registry in config.registries {
            for upstream in registry.upstreams {
                map[Self.key(registry.key, upstream.name)] = CircuitBreaker(
                    failureThreshold: config.health.failureThreshold,
                    baseCooldown: max(timeout, .seconds(1)),
                    maxCooldown: max(config.health.interval * 4, .seconds(60)),
                    trialTimeout: max(timeout * 3, .seconds(5)))
            }
        }
        breakers = map
    }

    static func key(_ registry: String, _ name: String) -> String { registry + "\u{0}" + name }

    public func breaker(_ upstream: Upstream) -> CircuitBreaker? {
        breakers[Self.key(upstream.registry, upstream.name)]
    }

    /// Whether a request may go to `upstream` now (takes the half-open trial slot if due).
    public func admit(_ upstream: Upstream) -> Bool {
        breaker(upstream)?.admit() ?? true
    }

    public func recordSuccess(_ upstream: Upstream) {
        breaker(upstream)?.recordSuccess()
    }

    public func recordFailure(_ upstream: Upstream, _ reason: String) {
        breaker(upstream)?.recordFailure(reason)
    }
}
