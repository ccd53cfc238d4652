import Testing

@testable import MirrorGatePostgres

/// The half-open gate in front of the database, without a database or a clock.
@Suite("AvailabilityGate")
struct AvailabilityGateTests {
    let t0 = ContinuousClock.now

    @Test func upLetsEveryCallGo() {
        var gate = AvailabilityGate(cooldown: .seconds(1))
        #expect(gate.admit(now: t0) == .go)
        #expect(gate.admit(now: t0) == .go)
        #expect(gate.isUp)
    }

    @Test func downFailsFastThroughTheCooldownThenLetsOneProbeGo() {
        var gate = AvailabilityGate(cooldown: .seconds(1))
        gate.unreachable("connection refused", now: t0)
        #expect(!gate.isUp)
        #expect(gate.admit(now: t0 + .milliseconds(999)) == .failFast("connection refused"))
        #expect(gate.admit(now: t0 + .seconds(1)) == .probe)
        #expect(gate.admit(now: t0 + .seconds(1)) == .failFast("connection refused"), "two probes at once")
        // The probe failed: fail fast for another cooldown, then probe again.
        gate.unreachable("timeout", now: t0 + .seconds(3))
        #expect(gate.admit(now: t0 + .seconds(3)) == .failFast("timeout"))
        #expect(gate.admit(now: t0 + .seconds(4)) == .probe)
        // The probe reached the database: everything goes.
        gate.reached()
        #expect(gate.admit(now: t0 + .seconds(4)) == .go)
        #expect(gate.downReason == nil)
    }

    @Test func aCancelledProbeHandsTheProbeOn() {
        var gate = AvailabilityGate(cooldown: .zero)
        gate.unreachable("down", now: t0)
        #expect(gate.admit(now: t0) == .probe)
        gate.abandoned(wasProbe: false)
        #expect(gate.admit(now: t0) == .failFast("down"))
        gate.abandoned(wasProbe: true)
        #expect(gate.admit(now: t0) == .probe)
    }
}
