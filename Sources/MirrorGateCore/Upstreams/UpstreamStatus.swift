import Foundation
import MirrorGateStorage
import MirrorGateUpstream

/// What `GET /_mirrorgate/upstreams` reports: per registry and upstream, in order, health,
/// circuit state, budget and last error. Never credentials.
public struct UpstreamStatusReport: Codable, Sendable {
    public struct Registry: Codable, Sendable {
        public init(registry: String, upstreams: [Entry]) {
            self.registry = registry
            self.upstreams = upstreams
        }
        public var registry: String
        public var upstreams: [Entry]
    }

    public struct Entry: Codable, Sendable {
        public var name: String
        public var url: String
        /// `healthy` when requests may go there now, `unhealthy` otherwise.
        public var health: String
        public var circuit: String
        public var consecutiveFailures: Int
        public var authenticated: Bool
        public var budget: BudgetStatus?
        public var lastError: String?
    }

    public var registries: [Registry]
}

extension UpstreamPool {
    /// A snapshot of every upstream.
    public func statusReport() async -> UpstreamStatusReport {
        var registries: [UpstreamStatusReport.Registry] = []
        for upstream in router.all {
            let breaker = health.breaker(upstream)
            let snapshot = breaker?.snapshot
            let budget = await budgetStatus(upstream)
            let entry = UpstreamStatusReport.Entry(
                name: upstream.name,
                url: upstream.config.url.description,
                health: (breaker?.isAvailable() ?? true) && snapshot?.phase == .closed ? "healthy" : "unhealthy",
                circuit: snapshot?.phase.rawValue ?? "closed",
                consecutiveFailures: snapshot?.consecutiveFailures ?? 0,
                authenticated: upstream.config.username != nil,
                budget: budget,
                lastError: snapshot?.lastError ?? budget?.lastError)
            if let index = registries.firstIndex(where: { $0.registry == upstream.registry }) {
                registries[index].upstreams.append(entry)
            } else {
                registries.append(.init(registry: upstream.registry, upstreams: [entry]))
            }
        }
        return UpstreamStatusReport(registries: registries)
    }
}
