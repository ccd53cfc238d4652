import CoreMetrics
import MirrorGateCore
import NIOCore
import Prometheus

/// `GET /metrics`: the Prometheus text format from swift-prometheus, with the state gauges
/// (circuits, budgets, cache size, single-flight) sampled just before each scrape.
public struct MetricsExporter: Sendable {
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    /// Bootstraps swift-metrics with a Prometheus registry (once per process).
    public static func bootstrap() -> MetricsExporter {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Request latency buckets from 1 ms to 60 s.
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
            .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        ]
        MetricsSystem.bootstrap(factory)
        return MetricsExporter(registry: registry)
    }

    /// The exposition, after sampling `service`'s state.
    public func render(_ service: PullService) async -> ByteBuffer {
        GatewayMetrics.sample(await service.status())
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 << 10)
        registry.emit(into: &bytes)
        return ByteBuffer(bytes: bytes)
    }
}
