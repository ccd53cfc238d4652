import MirrorGateStorage
import RegistryModel
import Testing

@testable import MirrorGateCore

/// The decisions of a blob fetch shared between replicas, as pure transitions.
@Suite("ReplicaFetchMachine")
struct ReplicaFetchMachineTests {
    static let key = LeaseKey("blob:docker.io/sha256:" + String(repeating: "a", count: 64))

    static func holder(_ generation: Int64, remaining: Duration = .seconds(12)) -> LeaseHolder {
        LeaseHolder(
            key: key, owner: "replica-\(generation)", ownerURL: "http://127.0.0.\(generation):5001", generation: generation, size: nil,
            bytesDone: 0, remaining: remaining)
    }

    static func lease(_ generation: Int64) -> FetchLease {
        FetchLease(key: key, owner: "me", generation: generation)
    }

    @Test func theWinnerFetchesAndTheOthersFollowTheHolder() {
        var winner = ReplicaFetchMachine()
        #expect(winner.start == .claim)
        #expect(winner.next(.claimed(.won(Self.lease(1)), stored: false)) == .fetch(Self.lease(1)))

        var loser = ReplicaFetchMachine()
        #expect(loser.next(.claimed(.held(Self.holder(1)), stored: false)) == .follow(Self.holder(1)))
        #expect(loser.next(.followed(.verified)) == .finish)
    }

    @Test func aWonClaimOnAStoredObjectServesItAndReleases() {
        var machine = ReplicaFetchMachine()
        #expect(machine.next(.claimed(.won(Self.lease(3)), stored: true)) == .serveStored(release: Self.lease(3)))
    }

    @Test func aKilledHolderIsWaitedOutThenTakenOver() {
        var machine = ReplicaFetchMachine(waitGrace: .seconds(1))
        let dead = Self.holder(1, remaining: .seconds(14))
        _ = machine.next(.claimed(.held(dead), stored: false))
        // Halfway the stream is reset: look at the lease again.
        #expect(machine.next(.followed(.broken(progressed: true))) == .inspect)
        // Still live (no heartbeat needed yet): the stream made progress, so reconnect first.
        #expect(machine.next(.inspected(dead)) == .follow(dead))
        // Refused now (the process is gone): wait for its lease rather than retry the port.
        #expect(machine.next(.followed(.broken(progressed: false))) == .inspect)
        #expect(machine.next(.inspected(dead)) == .wait(dead, timeout: .seconds(15)))
        // The lease ran out: claim, and win the takeover.
        #expect(machine.next(.waited(nil)) == .claim)
        #expect(machine.next(.claimed(.won(Self.lease(2)), stored: false)) == .fetch(Self.lease(2)))
    }

    @Test func anotherWaiterTookOverFirst() {
        var machine = ReplicaFetchMachine()
        _ = machine.next(.claimed(.held(Self.holder(1)), stored: false))
        #expect(machine.next(.followed(.broken(progressed: false))) == .inspect)
        // A new generation holds it: follow the new holder at once, no wait.
        #expect(machine.next(.inspected(Self.holder(2))) == .follow(Self.holder(2)))
        #expect(machine.following == Self.holder(2))
    }

    @Test func aHolderThatFinishedLeavesNoLeaseAndTheClaimFindsTheObject() {
        var machine = ReplicaFetchMachine()
        _ = machine.next(.claimed(.held(Self.holder(1)), stored: false))
        #expect(machine.next(.followed(.broken(progressed: false))) == .inspect)
        #expect(machine.next(.inspected(nil)) == .claim)
        #expect(machine.next(.claimed(.won(Self.lease(2)), stored: true)) == .serveStored(release: Self.lease(2)))
    }

    @Test func bytesThatDoNotVerifyAreDroppedAndClaimedAgain() {
        var machine = ReplicaFetchMachine()
        _ = machine.next(.claimed(.held(Self.holder(1)), stored: false))
        #expect(machine.next(.followed(.mismatch)) == .restartAndClaim)
    }

    @Test func theLeaseStoreFailingFallsBackToFetchingAlone() {
        var machine = ReplicaFetchMachine()
        #expect(machine.next(.storeFailed) == .fetch(nil))
        var following = ReplicaFetchMachine()
        _ = following.next(.claimed(.held(Self.holder(1)), stored: false))
        _ = following.next(.followed(.broken(progressed: false)))
        #expect(following.next(.storeFailed) == .fetch(nil))
    }

    @Test func followingThatNeverProgressesEndsInAFetchNotALoop() {
        var machine = ReplicaFetchMachine(maxFruitlessFollows: 3)
        let stuck = Self.holder(1)
        var action = machine.next(.claimed(.held(stuck), stored: false))
        var steps = 0
        // A live holder whose port never answers: follow, inspect, wait, follow, ...
        while action != .fetch(nil), steps < 50 {
            steps += 1
            switch action {
            case .follow: action = machine.next(.followed(.broken(progressed: false)))
            case .inspect: action = machine.next(.inspected(stuck))
            case .wait: action = machine.next(.waited(stuck))
            default: Issue.record("unexpected \(action)"); return
            }
        }
        #expect(action == .fetch(nil))
        #expect(steps < 50)
    }

    @Test func progressResetsTheFruitlessCount() {
        var machine = ReplicaFetchMachine(maxFruitlessFollows: 2)
        let holder = Self.holder(1)
        _ = machine.next(.claimed(.held(holder), stored: false))
        for _ in 0..<10 {
            // Every reconnect brings some bytes before breaking: keep following.
            #expect(machine.next(.followed(.broken(progressed: true))) == .inspect)
            #expect(machine.next(.inspected(holder)) == .follow(holder))
        }
    }
}
