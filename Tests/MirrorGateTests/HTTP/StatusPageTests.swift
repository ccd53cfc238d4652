import Foundation
import Hummingbird
@testable import MirrorGateCore
import MirrorGateStorage
@testable import MirrorGateHTTP
import Testing

@Suite("StatusPage")
struct StatusPageTests {
    static func status(failover: GatewayActivity.Failover) -> GatewayStatus {
        let entry = UpstreamStatusReport.Entry(
            name: "hub<b>", url: "https://registry-1.docker.io", health: "unhealthy", circuit: "open", consecutiveFailures: 3,
            authenticated: true,
            budget: BudgetStatus(limit: 100, remaining: 4, resetAt: Date(timeIntervalSince1970: 1_800_000_000), spentInWindow: 96, windowSeconds: 21600, blockedUntil: nil, lastError: nil),
            lastError: "timed out")
        return GatewayStatus(
            generatedAt: Date(timeIntervalSince1970: 1_800_000_000), startedAt: Date(timeIntervalSince1970: 1_799_990_000),
            registries: [.init(registry: "docker.io", upstreams: [entry])],
            cache: .init(sizeBytes: 3 << 30, maxSizeBytes: 12 << 30, objects: 42, writable: true, unwritableReason: nil,
                         manifestHits: 3, manifestMisses: 1, blobHits: 5, blobMisses: 1),
            singleFlight: .init(blobFetches: 1, blobWaiters: 4), recentFailovers: [failover])
    }

    @Test func rendersEveryPartAndEscapesInput() {
        let failover = GatewayActivity.Failover(
            at: Date(timeIntervalSince1970: 1_800_000_000), registry: "docker.io", repository: "<script>alert(1)</script>",
            reference: "v1", servedBy: "mirror", skipped: "hub: circuit open & \"down\"")
        let html = StatusPage.render(Self.status(failover: failover))
        #expect(!html.contains("<script>"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;:v1"))
        #expect(html.contains("hub&lt;b&gt;"))
        #expect(html.contains("circuit open &amp; &quot;down&quot;"))
        #expect(html.contains("4 of 100 left"))
        #expect(html.contains("gauge low"), "4 % left is drawn as low")
        #expect(html.contains("3.0 GiB of 12.0 GiB (25.0 %)"))
        #expect(html.contains("80.0 %"), "hit ratio 8 of 10")
        #expect(html.contains("1 blobs, 4 clients following them"))
    }

    @Test func bytesAreHumanReadable() {
        #expect(StatusPage.bytes(512) == "512 B")
        #expect(StatusPage.bytes(1536) == "1.5 KiB")
        #expect(StatusPage.bytes(50 << 30) == "50.0 GiB")
    }

    @Test func requestIDsAreKeptOnlyWhenSane() {
        typealias R = RegistryResponder<Hummingbird.BasicRequestContext>
        #expect(R.requestID("trace-42.a_b") == "trace-42.a_b")
        #expect(R.requestID("has space").count == 16)
        #expect(R.requestID(String(repeating: "a", count: 65)).count == 16)
        #expect(R.requestID(nil) != R.requestID(nil))
    }
}
