import Foundation
import MirrorGateCore
import MirrorGateStorage

/// `mirrorgate status` as text: each registry's upstreams in order (health, circuit, budget
/// and its reset, last error), the cache (use against `max_size`, objects, hit ratio,
/// writability, fetches in flight), and the recent failovers. Columns are aligned on the
/// plain text; colour is added only on a terminal.
struct StatusTable {
    /// One cell: its text and an optional colour.
    struct Cell {
        var text: String
        var color: Terminal.Color?
        init(_ text: String, _ color: Terminal.Color? = nil) {
            self.text = text
            self.color = color
        }
    }

    let status: GatewayStatus
    /// Where the status came from, for the title.
    let source: String
    let terminal: Terminal

    /// The whole report.
    func render() -> String {
        let now = status.generatedAt
        var out: [String] = []
        out.append(terminal.paint("MirrorGate", .bold) + " \(source)  up \(HumanFormat.duration(now.timeIntervalSince(status.startedAt)))"
            + "  (started \(HumanFormat.timestamp(status.startedAt)), report \(HumanFormat.timestamp(now)))")

        // One table per registry, with the same column widths for all of them.
        let header = ["#", "UPSTREAM", "URL", "HEALTH", "CIRCUIT", "FAILS", "BUDGET", "RESETS", "LAST ERROR"].map { Cell($0, .dim) }
        var tables: [[[Cell]]] = []
        for registry in status.registries {
            var rows: [[Cell]] = [header]
            for (index, upstream) in registry.upstreams.enumerated() {
                let (budget, resets) = budgetCells(upstream.budget, now: now)
                rows.append([
                    Cell("\(index + 1)"),
                    Cell(upstream.name + (upstream.authenticated ? " (auth)" : "")),
                    Cell(upstream.url),
                    Cell(upstream.health, upstream.health == "healthy" ? .green : .red),
                    Cell(upstream.circuit, upstream.circuit == "closed" ? .green : upstream.circuit == "open" ? .red : .yellow),
                    Cell("\(upstream.consecutiveFailures)", upstream.consecutiveFailures > 0 ? .yellow : nil),
                    budget,
                    resets,
                    Cell(Self.oneLine(upstream.lastError) ?? "-", upstream.lastError == nil ? nil : .red),
                ])
            }
            tables.append(rows)
        }
        let widths = Self.columnWidths(tables.flatMap { $0 })
        for (registry, rows) in zip(status.registries, tables) {
            out.append("")
            out.append(terminal.paint("registry \(registry.registry)", .bold))
            out += grid(rows, indent: 2, widths: widths)
        }

        let cache = status.cache
        out.append("")
        out.append(terminal.paint("cache", .bold))
        let fraction = cache.maxSizeBytes == 0 ? 0 : Double(cache.sizeBytes) / Double(cache.maxSizeBytes)
        let hits = cache.hitRatio.map { HumanFormat.percent($0) } ?? "-"
        out += grid([
            [Cell("used"), Cell("\(HumanFormat.bytes(cache.sizeBytes)) of \(HumanFormat.bytes(cache.maxSizeBytes)) (\(HumanFormat.percent(fraction)))",
                                fraction >= 0.95 ? .yellow : nil)],
            [Cell("objects"), Cell("\(cache.objects)")],
            [Cell("hit ratio"), Cell("\(hits)  (manifests \(cache.manifestHits) hits, \(cache.manifestMisses) misses; blobs \(cache.blobHits) hits, \(cache.blobMisses) misses)")],
            [Cell("writable"), cache.writable ? Cell("yes", .green) : Cell("no: \(cache.unwritableReason ?? "unknown reason") (blobs pass through uncached)", .red)],
            [Cell("in flight"), Cell("\(status.singleFlight.blobFetches) blob fetches, \(status.singleFlight.blobWaiters) clients following them")],
        ] + (status.tagRevalidations.map { r in
            [[Cell("revalidating"), Cell("\(r.inFlight) tags now; \(r.succeeded) confirmed (\(r.moved) moved), \(r.failed) failed"
                + (r.lastFailure.map { "; last failure \($0.tag): \($0.error)" } ?? ""), r.failed > 0 ? .yellow : nil)]]
        } ?? []), indent: 2)

        out.append("")
        out.append(terminal.paint("recent failovers", .bold) + (status.recentFailovers.isEmpty ? " none" : " (newest first)"))
        if !status.recentFailovers.isEmpty {
            var rows: [[Cell]] = [["TIME", "REGISTRY", "IMAGE", "SERVED BY", "SKIPPED"].map { Cell($0, .dim) }]
            for failover in status.recentFailovers {
                let separator = failover.reference.contains(":") ? "@" : ":"
                rows.append([
                    Cell(HumanFormat.timestamp(failover.at)),
                    Cell(failover.registry),
                    Cell(failover.repository + separator + Self.abbreviated(failover.reference)),
                    Cell(failover.servedBy, failover.servedBy == "none" ? .red : nil),
                    Cell(Self.oneLine(failover.skipped) ?? "-"),
                ])
            }
            out += grid(rows, indent: 2)
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// The budget (`remaining/limit`, `spent N`, `blocked`) and its reset time.
    func budgetCells(_ budget: BudgetStatus?, now: Date) -> (Cell, Cell) {
        guard let budget else { return (Cell("-"), Cell("-")) }
        if let blocked = budget.blockedUntil, blocked > now {
            return (Cell("blocked", .red), Cell(Self.reset(blocked, now: now)))
        }
        let text: String
        var color: Terminal.Color?
        if let limit = budget.limit, let remaining = budget.remaining {
            text = "\(remaining)/\(limit)"
            color = remaining == 0 ? .red : Double(remaining) < Double(limit) * 0.1 ? .yellow : nil
        } else if let remaining = budget.remaining {
            text = "\(remaining) left"
        } else {
            text = budget.spentInWindow > 0 ? "spent \(budget.spentInWindow)" : "-"
        }
        return (Cell(text, color), Cell(budget.resetAt.map { Self.reset($0, now: now) } ?? "-"))
    }

    /// `09:12:00Z (in 4m12s)` or `09:12:00Z (passed)`.
    static func reset(_ date: Date, now: Date) -> String {
        let delta = date.timeIntervalSince(now)
        return HumanFormat.time(date) + (delta > 0 ? " (in \(HumanFormat.duration(delta)))" : " (passed)")
    }

    /// `text` with line breaks replaced by spaces.
    static func oneLine(_ text: String?) -> String? {
        text.map { $0.split(whereSeparator: \.isNewline).joined(separator: " ") }
    }

    /// A digest reference cut to 12 hex digits, as docker shows image ids
    /// (`sha256:7bc5bd6e76da…`); a tag unchanged.
    static func abbreviated(_ reference: String) -> String {
        guard let colon = reference.firstIndex(of: ":"), reference.distance(from: colon, to: reference.endIndex) > 13 else { return reference }
        return String(reference[...reference.index(colon, offsetBy: 12)]) + "…"
    }

    /// The widest cell of each column of `rows`.
    static func columnWidths(_ rows: [[Cell]]) -> [Int] {
        var widths = [Int](repeating: 0, count: rows.map(\.count).max() ?? 0)
        for row in rows {
            for (index, cell) in row.enumerated() {
                widths[index] = max(widths[index], cell.text.count)
            }
        }
        return widths
    }

    /// Rows with columns padded to `widths` (by default the widest cell); on a terminal, the
    /// last column is cut to the terminal's width.
    func grid(_ rows: [[Cell]], indent: Int, widths: [Int]? = nil) -> [String] {
        let widths = widths ?? Self.columnWidths(rows)
        let prefix = String(repeating: " ", count: indent)
        return rows.map { row in
            var line = prefix
            var used = indent
            for (index, cell) in row.enumerated() {
                var text = cell.text
                if index < row.count - 1 {
                    text += String(repeating: " ", count: widths[index] - text.count)
                    line += terminal.paint(text, cell.color) + "  "
                    used += widths[index] + 2
                } else {
                    if terminal.isTTY { text = ProgressBar.fit(text, max(10, terminal.width - used - 1)) }
                    line += terminal.paint(text, cell.color)
                }
            }
            return line
        }
    }
}
