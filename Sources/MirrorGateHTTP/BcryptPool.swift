import CoreMetrics
import HummingbirdBcrypt
import NIOCore
import NIOPosix
import Synchronization

/// Where password hashes are checked: threads of their own, with a bounded queue.
///
/// bcrypt is slow on purpose (tens of milliseconds a check at cost 10). On NIO's shared
/// blocking pool, which also does every cached blob's `open` and `pread`, a flood of wrong
/// passwords once delayed a cached 2 MB blob from 0.04 s to 16.5 s. Here at most ``capacity``
/// checks are admitted (running or waiting); one more is refused at once (``verify(_:hash:)``
/// returns nil, the client gets 429), because a queue without a bound only turns a flood into
/// unbounded latency for everyone who has not been remembered yet.
final class BcryptPool: Sendable {
    /// The threads, shared by every pool object of the process: half the cores (at least one),
    /// so serving always keeps a core. Static, because an `NIOThreadPool` must be shut down
    /// before it is released and this one lives as long as the process.
    static let threads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(1, System.coreCount / 2))
        pool.start()
        return pool
    }()

    /// Checks admitted at once, running or waiting.
    let capacity: Int
    private let admitted = Atomic<Int>(0)
    private let performed = Atomic<Int>(0)

    init(capacity: Int = max(1, System.coreCount / 2) * 8) {
        self.capacity = capacity
    }

    /// Checks run so far (known and unknown users alike).
    var verifications: Int { performed.load(ordering: .relaxed) }

    /// Whether `password` matches `hash`; nil when ``capacity`` checks are already admitted.
    func verify(_ password: String, hash: String) async -> Bool? {
        guard admitted.add(1, ordering: .relaxed).newValue <= capacity else {
            admitted.subtract(1, ordering: .relaxed)
            return nil
        }
        defer { admitted.subtract(1, ordering: .relaxed) }
        return try? await Self.threads.runIfActive { [self] in
            performed.add(1, ordering: .relaxed)
            Counter(label: "mirrorgate_auth_bcrypt_checks_total").increment()
            return Bcrypt.verify(password, hash: hash)
        }
    }

    /// A hash of a random password at `cost`, for unknown users to be checked against.
    static func dummyHash(cost: UInt8) -> String {
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<4).map { _ in String(generator.next() as UInt64, radix: 36) }.joined()
        return Bcrypt.hash(secret, cost: min(max(cost, 4), 31))
    }
}
