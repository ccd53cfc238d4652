import Synchronization

/// One image's progress in `mirrorgate warm`: bytes and blobs done against the plan, and the
/// line that shows them (`alpine:3.20  [=====>    ]  12.3/40.0 MiB  5.1 MiB/s  blobs 3/7`).
/// Blob downloads update it concurrently; a ticker redraws it in place on a terminal.
final class ProgressBar: Sendable {
    /// The counters.
    struct Counts: Sendable, Equatable {
        var bytesDone: UInt64 = 0
        var bytesTotal: UInt64 = 0
        var blobsDone = 0
        var blobsTotal = 0
        /// What happens before the blobs are known (`resolving`).
        var phase = "resolving"
    }

    /// The image as the user wrote it.
    let label: String
    /// When the image was started.
    let started: ContinuousClock.Instant
    private let counts: Mutex<Counts>

    init(label: String, started: ContinuousClock.Instant = .now) {
        self.label = label
        self.started = started
        self.counts = Mutex(Counts())
    }

    /// The blobs to fetch and their total size are known.
    func plan(blobs: Int, bytes: UInt64) {
        counts.withLock {
            $0.blobsTotal = blobs
            $0.bytesTotal = bytes
            $0.phase = "fetching"
        }
    }

    /// Sets what happens before the plan is known.
    func phase(_ text: String) {
        counts.withLock { $0.phase = text }
    }

    /// `count` more bytes arrived.
    func add(bytes count: Int) {
        counts.withLock { $0.bytesDone += UInt64(count) }
    }

    /// One more blob finished (whether or not it succeeded).
    func blobFinished() {
        counts.withLock { $0.blobsDone += 1 }
    }

    /// The counters now.
    var snapshot: Counts { counts.withLock { $0 } }

    /// Time since ``started``.
    var elapsed: Duration { ContinuousClock.now - started }

    /// The progress line, at most `width` columns.
    func render(width: Int) -> String {
        let now = snapshot
        let label = Self.fit(label, 40)
        guard now.blobsTotal > 0 else {
            return Self.fit("\(label)  \(now.phase)…", width - 1)
        }
        let stats = "  \(HumanFormat.mebibytes(now.bytesDone).dropLast(4))/\(HumanFormat.mebibytes(now.bytesTotal))"
            + "  \(HumanFormat.rate(bytes: now.bytesDone, over: elapsed))  blobs \(now.blobsDone)/\(now.blobsTotal)"
        let barWidth = min(30, width - 1 - label.count - stats.count - 4)
        guard barWidth >= 5 else { return Self.fit(label + stats, width - 1) }
        return "\(label)  [\(Self.bar(done: now.bytesDone, total: now.bytesTotal, width: barWidth))]" + stats
    }

    /// `=====>     ` for a fraction `done / total` of `width` cells.
    static func bar(done: UInt64, total: UInt64, width: Int) -> String {
        let fraction = total == 0 ? 1 : min(1, Double(done) / Double(total))
        let filled = Int((fraction * Double(width)).rounded(.down))
        if filled >= width { return String(repeating: "=", count: width) }
        return String(repeating: "=", count: filled) + ">" + String(repeating: " ", count: width - filled - 1)
    }

    /// `text` cut to `width` characters, with `…` when cut.
    static func fit(_ text: String, _ width: Int) -> String {
        guard width > 1, text.count > width else { return text }
        return String(text.prefix(width - 1)) + "…"
    }
}
