import Foundation
import MirrorGateStorage

/// `mirrorgate report` as an aligned table, or as CSV (one `spent:<upstream>` column per
/// upstream that was spent on).
struct ReportTable {
    let report: PullReport
    let source: String
    /// The `--since` the report was asked for.
    let window: String
    let terminal: Terminal

    func render() -> String {
        var out = [terminal.paint("pulls", .bold) + " through \(source) since \(HumanFormat.timestamp(report.since)) (\(window)), by \(report.by.rawValue)"]
        guard !report.rows.isEmpty else { return (out + ["  no pulls"]).joined(separator: "\n") + "\n" }
        var rows: [[StatusTable.Cell]] = [[report.by.rawValue.uppercased(), "PULLS", "DIGESTS", "SPENT", "SAVED", "LAST PULL"].map { StatusTable.Cell($0, .dim) }]
        for row in report.rows {
            rows.append([
                StatusTable.Cell(row.key),
                StatusTable.Cell("\(row.pulls)"),
                StatusTable.Cell("\(row.digests)"),
                row.spent.isEmpty ? StatusTable.Cell("-") : StatusTable.Cell(Self.spent(row.spent), .yellow),
                StatusTable.Cell("\(row.saved)", row.saved > 0 ? .green : nil),
                StatusTable.Cell(row.lastPull.map(HumanFormat.timestamp) ?? "-"),
            ])
        }
        let widths = StatusTable.columnWidths(rows)
        let numeric: Set<Int> = [1, 2, 4]
        for row in rows {
            var line = " "
            for (index, cell) in row.enumerated() {
                let pad = String(repeating: " ", count: widths[index] - cell.text.count)
                line += " " + terminal.paint(numeric.contains(index) ? pad + cell.text : cell.text + pad, cell.color) + " "
            }
            out.append(String(line.reversed().drop { $0 == " " }.reversed()))
        }
        let pulls = report.rows.reduce(0) { $0 + $1.pulls }
        let saved = report.rows.reduce(0) { $0 + $1.saved }
        var spent: [String: Int] = [:]
        for row in report.rows { spent.merge(row.spent, uniquingKeysWith: +) }
        out.append("")
        out.append("  \(pulls) pulls, \(saved) without spending quota" + (spent.isEmpty ? ", nothing spent" : ", spent: \(Self.spent(spent))"))
        return out.joined(separator: "\n") + "\n"
    }

    /// `hub 3, mirror 1`
    static func spent(_ spent: [String: Int]) -> String {
        spent.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    /// RFC 4180: a header line, then one line per row; `last_pull` empty when there was none.
    static func csv(_ report: PullReport) -> String {
        let upstreams = Set(report.rows.flatMap(\.spent.keys)).sorted()
        var lines = [([report.by.rawValue, "pulls", "digests"] + upstreams.map { "spent:\($0)" } + ["saved", "last_pull"]).map(field).joined(separator: ",")]
        let dates = ISO8601DateFormatter()
        for row in report.rows {
            let cells = [row.key, "\(row.pulls)", "\(row.digests)"] + upstreams.map { "\(row.spent[$0] ?? 0)" }
                + ["\(row.saved)", row.lastPull.map(dates.string(from:)) ?? ""]
            lines.append(cells.map(field).joined(separator: ","))
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    static func field(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
