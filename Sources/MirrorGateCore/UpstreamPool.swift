import Logging
import MirrorGateUpstream

/// The upstreams of every registry with their health: hands out candidates in configured
/// order, admits each through its circuit breaker, and feeds every outcome back.
public final class UpstreamPool: Sendable {
    public let client: UpstreamClient
    public let router: UpstreamRouter
    public let health: UpstreamHealth
    let logger: Logger

    public init(client: UpstreamClient, router: UpstreamRouter, health: UpstreamHealth, logger: Logger) {
        self.client = client
        self.router = router
        self.health = health
        self.logger = logger
    }

    /// Upstreams for `purpose` in configured order (circuit state is checked per attempt with ``admit(_:)``).
    public func candidates(registry: String, purpose: UpstreamRouter.Purpose) -> [Upstream] {
        router.candidates(registry: registry, purpose: purpose)
    }

    /// Whether to try `upstream` now; an open circuit is skipped at no network cost.
    public func admit(_ upstream: Upstream) -> Bool {
        health.admit(upstream)
    }

    /// Sends a request and records the outcome: a transport error, a 5xx or a 429 counts as a
    /// failure; any other answer (404 included) shows the upstream is alive.
    public func send(_ request: UpstreamClient.Request, to upstream: Upstream) async throws(UpstreamError) -> UpstreamResponse {
        do {
            let response = try await client.send(request, to: upstream)
            if response.status >= 500 || response.status == 429 {
                recordFailure(upstream, "answered \(response.status)")
            } else {
                health.recordSuccess(upstream)
            }
            return response
        } catch {
            recordFailure(upstream, error.description)
            throw error
        }
    }

    /// Counts a failure found after the head arrived (stalled body, digest mismatch).
    public func recordFailure(_ upstream: Upstream, _ reason: String) {
        if health.breaker(upstream)?.recordFailure(reason) == true {
            logger.warning("circuit opened: upstream skipped until its cool-down ends", metadata: [
                "registry": "\(upstream.registry)", "upstream": "\(upstream.name)", "reason": "\(reason)",
            ])
        }
    }
}
