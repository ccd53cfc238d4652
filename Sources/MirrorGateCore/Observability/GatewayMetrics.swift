import CoreMetrics
import Foundation
import MirrorGateUpstream

/// The gateway's metrics, through swift-metrics (the executable bootstraps Prometheus; without
/// a bootstrap every call is a no-op).
///
/// Label values are bounded: routes and kinds are fixed words, upstream and registry names come
/// from the configuration, failure reasons from ``UpstreamFailureReason``. Repository names,
/// tags and digests never become labels.
public enum GatewayMetrics {
    /// HTTP requests answered: `route`, `method`, `status`.
    public static func request(route: String, method: String, status: Int, duration: Duration) {
        Counter(label: "mirrorgate_http_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))]).increment()
        Timer(label: "mirrorgate_http_request_duration_seconds", dimensions: [("route", route)], preferredDisplayUnit: .seconds)
            .recordNanoseconds(duration.nanoseconds)
    }

    /// A manifest or blob answered from the cache (`hit`), fetched (`miss`), served stale, or passed through.
    public static func cache(kind: ContentKind, result: CacheResult) {
        Counter(label: "mirrorgate_cache_requests_total", dimensions: [("kind", kind.rawValue), ("result", result.rawValue)]).increment()
    }

    /// Body bytes sent to clients, by kind and by where they came from (`cache` or `upstream`).
    public static func servedBytes(kind: ContentKind, fromCache: Bool, bytes: Int) {
        guard bytes > 0 else { return }
        Counter(label: "mirrorgate_served_bytes_total", dimensions: [("kind", kind.rawValue), ("source", fromCache ? "cache" : "upstream")])
            .increment(by: Int64(bytes))
    }

    /// One request sent upstream (`kind`: manifest, blob, tags, referrers, probe).
    public static func upstreamRequest(_ upstream: Upstream, kind: String, method: String) {
        Counter(label: "mirrorgate_upstream_requests_total", dimensions: [("registry", upstream.registry), ("upstream", upstream.name), ("kind", kind), ("method", method)]).increment()
    }

    /// Body bytes received from an upstream.
    public static func upstreamBytes(_ upstream: Upstream, kind: ContentKind, bytes: UInt64) {
        guard bytes > 0 else { return }
        Counter(label: "mirrorgate_upstream_bytes_total", dimensions: [("registry", upstream.registry), ("upstream", upstream.name), ("kind", kind.rawValue)])
            .increment(by: Int64(clamping: bytes))
    }

    /// An upstream request that failed, by bounded reason.
    public static func upstreamFailure(_ upstream: Upstream, reason: UpstreamFailureReason) {
        Counter(label: "mirrorgate_upstream_failures_total", dimensions: [("registry", upstream.registry), ("upstream", upstream.name), ("reason", reason.rawValue)]).increment()
    }

    /// A manifest GET spent against an upstream's budget.
    public static func manifestSpend(_ upstream: Upstream) {
        Counter(label: "mirrorgate_upstream_manifest_gets_spent_total", dimensions: [("registry", upstream.registry), ("upstream", upstream.name)]).increment()
    }

    /// Objects and bytes evicted from the cache.
    public static func evicted(objects: Int, bytes: UInt64) {
        guard objects > 0 else { return }
        Counter(label: "mirrorgate_cache_evictions_total").increment(by: Int64(objects))
        Counter(label: "mirrorgate_cache_evicted_bytes_total").increment(by: Int64(clamping: bytes))
    }

    /// Sets the gauges that describe state rather than events: circuit state, budgets, cache size.
    /// Called before each scrape.
    public static func sample(_ status: GatewayStatus) {
        for registry in status.registries {
            for entry in registry.upstreams {
                let dims = [("registry", registry.registry), ("upstream", entry.name)]
                let circuit: Double = switch entry.circuit {
                case "open": 2
                case "half-open": 1
                default: 0
                }
                Gauge(label: "mirrorgate_upstream_circuit_state", dimensions: dims).record(circuit)
                Gauge(label: "mirrorgate_upstream_healthy", dimensions: dims).record(entry.health == "healthy" ? 1 : 0)
                if let remaining = entry.budget?.remaining {
                    Gauge(label: "mirrorgate_upstream_budget_remaining", dimensions: dims).record(Double(remaining))
                }
                if let limit = entry.budget?.limit {
                    Gauge(label: "mirrorgate_upstream_budget_limit", dimensions: dims).record(Double(limit))
                }
                if let spent = entry.budget?.spentInWindow {
                    Gauge(label: "mirrorgate_upstream_budget_spent_in_window", dimensions: dims).record(Double(spent))
                }
            }
        }
        Gauge(label: "mirrorgate_cache_size_bytes").record(Double(status.cache.sizeBytes))
        Gauge(label: "mirrorgate_cache_max_size_bytes").record(Double(status.cache.maxSizeBytes))
        Gauge(label: "mirrorgate_cache_objects").record(Double(status.cache.objects))
        Gauge(label: "mirrorgate_cache_writable").record(status.cache.writable ? 1 : 0)
        Gauge(label: "mirrorgate_singleflight_waiters", dimensions: [("kind", "blob")]).record(Double(status.singleFlight.blobWaiters))
        Gauge(label: "mirrorgate_singleflight_fetches", dimensions: [("kind", "blob")]).record(Double(status.singleFlight.blobFetches))
    }
}

/// Manifest or blob.
public enum ContentKind: String, Sendable, Codable {
    case manifest
    case blob
}

/// How a manifest or blob request was answered.
public enum CacheResult: String, Sendable, Codable {
    /// From the cache, no upstream asked.
    case hit
    /// A tag answer from the cache at once, revalidated in the background meanwhile.
    case hitRevalidating = "hit_revalidating"
    /// A tag answer the request waited for an upstream to confirm (its digest was cached).
    case revalidated
    /// Fetched from an upstream (or joined a fetch in progress).
    case miss
    /// A tag no upstream could confirm, served from the cache.
    case stale
    /// Streamed from upstream without caching (disk full).
    case passThrough = "pass_through"
}

/// A bounded classification of upstream failures, for metric labels.
public enum UpstreamFailureReason: String, Sendable {
    case connection
    case timeout
    case redirect
    case authentication
    case badResponse = "bad_response"
    case rateLimited = "rate_limited"
    case serverError = "server_error"
    case digestMismatch = "digest_mismatch"
    case stalled
}

extension Duration {
    /// Whole nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (s, atto) = components
        return s.multipliedReportingOverflow(by: 1_000_000_000).partialValue + atto / 1_000_000_000
    }
}
