import Testing

@testable import MirrorGateCore

/// The fairness of `limits.max_concurrent_fetches`, as pure transitions.
@Suite("FetchSlots")
struct FetchSlotsTests {
    @Test func oneRegistryHoldsAtMostThreeQuartersOfTheSlots() {
        var slots = FetchSlots.State(capacity: 8)
        var ticket = 0
        var started = 0
        for _ in 0..<8 {
            if slots.request("evil.test", ticket: ticket) { started += 1 }
            ticket += 1
        }
        #expect(started == 6)
        // Another registry still finds a slot at once.
        let r1 = slots.request("docker.io", ticket: ticket)
        #expect(r1)
        ticket += 1
        let r2 = slots.request("docker.io", ticket: ticket)
        #expect(r2)
        ticket += 1
        #expect(slots.total == 8)
        let r3 = slots.request("docker.io", ticket: ticket)
        #expect(!r3, "over capacity")
    }

    @Test func aFreedSlotGoesToTheRegistryHoldingTheFewest() {
        var slots = FetchSlots.State(capacity: 4)
        // evil.test takes 3 (its cap), docker.io 1; each queues more.
        for t in 0..<3 {
            let started = slots.request("evil.test", ticket: t)
            #expect(started)
        }
        let r4 = slots.request("docker.io", ticket: 10)
        #expect(r4)
        let r5 = slots.request("evil.test", ticket: 3)
        #expect(!r5)
        let r6 = slots.request("docker.io", ticket: 11)
        #expect(!r6)
        // evil.test finishes one: docker.io (1 held) goes before evil.test (2 held).
        let next = slots.finish("evil.test")
        #expect(next.map(\.ticket) == [11])
        #expect(slots.active["docker.io"] == 2)
    }

    @Test func waitersOfOneKeyRunInOrder() {
        var slots = FetchSlots.State(capacity: 1)
        let r7 = slots.request("a", ticket: 0)
        #expect(r7)
        let r8 = slots.request("a", ticket: 1)
        #expect(!r8)
        let r9 = slots.request("a", ticket: 2)
        #expect(!r9)
        let first = slots.finish("a")
        #expect(first.map(\.ticket) == [1])
        let second = slots.finish("a")
        #expect(second.map(\.ticket) == [2])
        let none = slots.finish("a")
        #expect(none.isEmpty)
        #expect(slots.total == 0)
    }

    @Test func aWithdrawnTicketIsNotStarted() {
        var slots = FetchSlots.State(capacity: 1)
        let r10 = slots.request("a", ticket: 0)
        #expect(r10)
        let r11 = slots.request("b", ticket: 1)
        #expect(!r11)
        let r12 = slots.withdraw("b", ticket: 1)
        #expect(r12)
        let r13 = slots.withdraw("b", ticket: 1)
        #expect(!r13)
        let none = slots.finish("a")
        #expect(none.isEmpty)
    }

    @Test func oneSlotIsAlwaysAvailableEvenAtCapacityOne() {
        var slots = FetchSlots.State(capacity: 1)
        #expect(slots.perKeyCap == 1)
        let r14 = slots.request("a", ticket: 0)
        #expect(r14)
    }

    /// The shell: a cancelled waiter gives up its place without a slot.
    @Test func cancelledWaiterGivesUp() async {
        let slots = FetchSlots(capacity: 1)
        #expect(await slots.acquire("a"))
        let waiter = Task { await slots.acquire("a") }
        try? await Task.sleep(for: .milliseconds(50))
        waiter.cancel()
        #expect(await waiter.value == false)
        slots.release("a")
        #expect(slots.usage.active == 0)
        #expect(await slots.acquire("b"))
    }
}
