import Logging
import MirrorGateUpstream
import ServiceLifecycle

/// Active health checks: every `health.interval` (with ±20 % jitter) each upstream's `/v2/`
/// is probed concurrently, off the request path; 200 or 401 is healthy. Results feed the
/// circuit breakers, and a probe is the trial that can close an open circuit once its
/// cool-down has passed.
struct HealthProber: Service {
    let pool: UpstreamPool
    let interval: Duration
    let logger: Logger

    init(pool: UpstreamPool, interval: Duration, logger: Logger) {
        self.pool = pool
        self.interval = interval
        self.logger = logger
    }

    func run() async throws {
        let upstreams = pool.router.all
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let jitter = Double.random(in: 0.8...1.2)
            do {
                // Wakes early on graceful shutdown so the service group can stop promptly.
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval * jitter) }
            } catch {
                return
            }
            await withDiscardingTaskGroup { group in
                for upstream in upstreams where pool.health.admit(upstream) {
                    group.addTask { await probe(upstream) }
                }
            }
        }
    }

    /// Probes one upstream and records the result.
    func probe(_ upstream: Upstream) async {
        do {
            let response = try await pool.client.send(.init(method: .GET, path: "", repository: nil, authenticate: false), to: upstream)
            await response.discardBody()
            if response.status == 200 || response.status == 401 {
                let wasOpen = pool.health.breaker(upstream)?.snapshot.phase != .closed
                pool.recordSuccess(upstream)
                if wasOpen {
                    logger.info("upstream healthy again: circuit closed", metadata: ["registry": "\(upstream.registry)", "upstream": "\(upstream.name)"])
                }
            } else {
                pool.recordFailure(upstream, "probe answered \(response.status)")
            }
        } catch {
            pool.recordFailure(upstream, "probe: \(error)")
        }
    }
}
