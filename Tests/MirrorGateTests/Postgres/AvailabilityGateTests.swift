import Testing

@testable import MirrorGatePostgres

/// The half-open gate in front of the database, without a database.
@Suite("AvailabilityGate")
struct AvailabilityGateTests {
    @Test func upLetsEveryCallGo() {
        var gate = AvailabilityGate()
        #expect(gate.admit() == .go)
        #expect(gate.admit() == .go)
        #expect(gate.isUp)
    }

    @Test func downLetsOneProbeGoAndFailsTheRestFast() {
        var gate = AvailabilityGate()
        gate.unreachable("connection refused")
        #expect(!gate.isUp)
        #expect(gate.admit() == .probe)
        #expect(gate.admit() == .failFast("connection refused"))
        #expect(gate.admit() == .failFast("connection refused"))
        // The probe failed: the next call probes again.
        gate.unreachable("timeout")
        #expect(gate.admit() == .probe)
        #expect(gate.admit() == .failFast("timeout"))
        // The probe reached the database: everything goes.
        gate.reached()
        #expect(gate.admit() == .go)
        #expect(gate.downReason == nil)
    }

    @Test func aCancelledProbeHandsTheProbeOn() {
        var gate = AvailabilityGate()
        gate.unreachable("down")
        #expect(gate.admit() == .probe)
        gate.abandoned(wasProbe: false)
        #expect(gate.admit() == .failFast("down"))
        gate.abandoned(wasProbe: true)
        #expect(gate.admit() == .probe)
    }
}
