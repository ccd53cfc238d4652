import MirrorGateConfig
import MirrorGateUpstream

/// Routing policy: which upstreams of a registry to try, in which order, for a purpose.
struct UpstreamRouter: Sendable {
    /// What a request needs from an upstream.
    enum Purpose: Sendable {
        /// Resolve a tag to a digest (skips upstreams with `resolve: false`).
        case resolveTag
        /// Fetch content by digest, or pass through listings.
        case content
    }

    private let upstreams: [String: [Upstream]]
    /// Every upstream of every registry, in configuration order.
    let all: [Upstream]

    init(config: GatewayConfig) {
        var map: [String: [Upstream]] = [:]
        for registry in config.registries {
            map[registry.key] = registry.upstreams.map { Upstream(registry: registry.key, config: $0) }
        }
        self.upstreams = map
        self.all = config.registries.flatMap { map[$0.key] ?? [] }
    }

    /// The upstreams to try, in configured order.
    func candidates(registry: String, purpose: Purpose) -> [Upstream] {
        let all = upstreams[registry] ?? []
        switch purpose {
        case .resolveTag: return all.filter(\.config.resolve)
        case .content: return all
        }
    }
}
