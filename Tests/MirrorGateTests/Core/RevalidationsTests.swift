import Foundation
import MirrorGateStorage
import NIOCore
import RegistryModel
import Testing

@testable import MirrorGateCore

/// The record behind stale-while-revalidate: one revalidation per tag at a time, at most one
/// start per `refresh_after` whatever the outcome; and the hot copies in front of the index.
@Suite("Revalidations and HotManifests")
struct RevalidationsTests {
    static let tag = FlightKey.tag(registry: "docker.io", repository: "library/app", tag: "v1")
    static let other = FlightKey.tag(registry: "docker.io", repository: "library/app", tag: "v2")
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func oneAtATimePerTag() {
        let revalidations = Revalidations()
        #expect(revalidations.begin(Self.tag, every: 0, now: Self.t0))
        #expect(!revalidations.begin(Self.tag, every: 0, now: Self.t0.addingTimeInterval(5)), "one already runs")
        #expect(revalidations.begin(Self.other, every: 0, now: Self.t0), "another tag is independent")
        #expect(revalidations.report.inFlight == 2)
        revalidations.end(Self.tag, failure: nil, now: Self.t0.addingTimeInterval(6))
        #expect(revalidations.begin(Self.tag, every: 0, now: Self.t0.addingTimeInterval(6)), "refresh_after 0s: every request once the last ended")
    }

    @Test func atMostOneStartPerPeriodEvenAfterAFailure() {
        let revalidations = Revalidations()
        #expect(revalidations.begin(Self.tag, every: 30, now: Self.t0))
        revalidations.end(Self.tag, failure: "up1: connection refused", now: Self.t0.addingTimeInterval(1))
        #expect(!revalidations.begin(Self.tag, every: 30, now: Self.t0.addingTimeInterval(2)))
        #expect(!revalidations.begin(Self.tag, every: 30, now: Self.t0.addingTimeInterval(29.9)))
        #expect(revalidations.begin(Self.tag, every: 30, now: Self.t0.addingTimeInterval(30)))
        revalidations.end(Self.tag, moved: true, failure: nil, now: Self.t0.addingTimeInterval(31))
        let report = revalidations.report
        #expect(report.inFlight == 0)
        #expect(report.failed == 1)
        #expect(report.succeeded == 1)
        #expect(report.moved == 1)
        #expect(report.lastFailure?.tag == "docker.io/library/app:v1")
        #expect(report.lastFailure?.error == "up1: connection refused")
    }

    @Test func forgetsTheOldestPastCapacity() {
        let revalidations = Revalidations(capacity: 4)
        for i in 0..<4 {
            let key = FlightKey.tag(registry: "r", repository: "a", tag: "t\(i)")
            #expect(revalidations.begin(key, every: 10, now: Self.t0))
            revalidations.end(key, failure: nil, now: Self.t0)
        }
        // Past capacity, entries older than the period go; the tags tried at t0 are eligible
        // again, which merely allows one more revalidation.
        let fifth = FlightKey.tag(registry: "r", repository: "a", tag: "t4")
        #expect(revalidations.begin(fifth, every: 10, now: Self.t0.addingTimeInterval(11)))
        #expect(revalidations.begin(FlightKey.tag(registry: "r", repository: "a", tag: "t0"), every: 10, now: Self.t0.addingTimeInterval(11)))
        #expect(!revalidations.begin(fifth, every: 10, now: Self.t0.addingTimeInterval(12)), "still running")
    }

    static func record(_ tag: String, _ hex: Character, at seconds: Double) -> TagRecord {
        TagRecord(registry: "docker.io", repository: "library/app", tag: tag,
                  digest: Digest(algorithm: .sha256, hex: String(repeating: hex, count: 64)),
                  mediaType: "application/vnd.oci.image.manifest.v1+json",
                  checkedAt: t0.addingTimeInterval(seconds), upstream: "up1")
    }

    @Test func aTagAnswerIsNeverReplacedByAnOlderOne() {
        let hot = HotManifests()
        let key = HotManifests.TagKey(registry: "docker.io", repository: "library/app", tag: "v1")
        hot.remember(Self.record("v1", "a", at: 10))
        hot.remember(Self.record("v1", "b", at: 5))
        #expect(hot.tag(key)?.digest.hex == String(repeating: "a", count: 64))
        hot.remember(Self.record("v1", "c", at: 20))
        #expect(hot.tag(key)?.digest.hex == String(repeating: "c", count: 64))
        hot.forget(key)
        #expect(hot.tag(key) == nil)
    }

    @Test func manifestBodiesStayWithinTheirByteBudget() {
        let hot = HotManifests(byteCapacity: 64 << 10)
        let body = HotManifests.Body(mediaType: "application/vnd.oci.image.manifest.v1+json", bytes: ByteBuffer(repeating: 1, count: 2 << 10))
        for i in 0..<100 {
            let digest = Digest(algorithm: .sha256, hex: String(format: "%064x", i))
            hot.remember(body, for: digest)
            #expect(hot.heldBytes <= 64 << 10)
        }
        // The newest is always kept; at most what fits of the others is.
        #expect(hot.body(Digest(algorithm: .sha256, hex: String(format: "%064x", 99))) != nil)
        let kept = (0..<100).filter { hot.body(Digest(algorithm: .sha256, hex: String(format: "%064x", $0))) != nil }
        #expect(kept.count <= 32 && kept.count >= 16, "\(kept.count) of 100 kept")
        // Too big for the cache at all (over a sixteenth of it): not kept.
        let big = HotManifests.Body(mediaType: body.mediaType, bytes: ByteBuffer(repeating: 2, count: 5 << 10))
        let bigDigest = Digest(algorithm: .sha256, hex: String(repeating: "f", count: 64))
        hot.remember(big, for: bigDigest)
        #expect(hot.body(bigDigest) == nil)
    }
}
