import Logging
import MirrorGateUpstream

/// The upstreams of every registry with their health: hands out candidates in configured
/// order, admits each through its circuit breaker, and feeds every outcome back.
public final class UpstreamPool: Sendable {
    public let client: UpstreamClient
    public let router: UpstreamRouter
    public let health: UpstreamHealth
    public let quota: QuotaBook
    let logger: Logger

    public init(client: UpstreamClient, router: UpstreamRouter, health: UpstreamHealth, quota: QuotaBook, logger: Logger) {
        self.client = client
        self.router = router
        self.health = health
        self.quota = quota
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

    /// Sends a request and records the outcome.
    ///
    /// - Budget: a manifest GET is a spend and is refused (``UpstreamError/rateLimited(until:)``,
    ///   nothing sent) when the upstream's budget is spent; every answer's `ratelimit-*` headers
    ///   and 429s update the budget.
    /// - Health: a transport error or a 5xx counts as a failure; any other answer (404
    ///   included) shows the upstream is alive. A 429 is a budget matter, not a health one.
    public func send(_ request: UpstreamClient.Request, to upstream: Upstream) async throws(UpstreamError) -> UpstreamResponse {
        let isManifest = request.path.contains("/manifests/")
        let spends = isManifest && request.method == .GET
        let admission = spends ? quota.reserveManifestGET(upstream) : quota.admitFree(upstream)
        if case .failure(let refusal) = admission { throw refusal }
        let kind = isManifest ? "manifest" : request.path.contains("/blobs/") ? "blob" : request.path.hasSuffix("tags/list") ? "tags" : "other"
        GatewayMetrics.upstreamRequest(upstream, kind: kind, method: request.method.rawValue)
        let response: UpstreamResponse
        do {
            response = try await client.send(request, to: upstream)
        } catch {
            if spends { await quota.finishManifestGET(upstream, status: nil, headers: nil) }
            GatewayMetrics.upstreamFailure(upstream, reason: UpstreamFailureReason(error))
            recordFailure(upstream, error.description)
            throw error
        }
        if spends, (200..<300).contains(response.status) { GatewayMetrics.manifestSpend(upstream) }
        if response.status == 429 { GatewayMetrics.upstreamFailure(upstream, reason: .rateLimited) }
        if spends {
            await quota.finishManifestGET(upstream, status: response.status, headers: response.headers)
        } else if isManifest || response.status == 429 {
            await quota.observe(upstream, status: response.status, headers: response.headers, manifestGET: false)
        }
        if response.status >= 500 {
            GatewayMetrics.upstreamFailure(upstream, reason: .serverError)
            recordFailure(upstream, "answered \(response.status)")
        } else {
            health.recordSuccess(upstream)
        }
        return response
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
