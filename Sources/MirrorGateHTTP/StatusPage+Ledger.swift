import Foundation
import MirrorGateConfig
import MirrorGateStorage

/// The status page's view of the pull ledger (the last 24 hours: totals, spend against savings
/// per upstream as CSS bars, top repositories and clients) and of the repository policies.
extension StatusPage {
    /// How many repositories and clients the page lists.
    static let top = 10

    static func pullsSection(_ pulls: Extras.Pulls?, generatedAt: Date) -> String {
        var html = "<h2>Pulls, last 24 hours</h2>\n"
        guard let pulls else {
            return html + "<p class=\"muted\">The pull ledger cannot be read right now.</p>\n"
        }
        let rows = pulls.upstreams.rows
        let total = rows.reduce(0) { $0 + $1.pulls }
        guard !rows.isEmpty else {
            return html + "<p class=\"muted\">No manifest pulls in the last 24 hours.</p>\n"
        }
        let saved = rows.reduce(0) { $0 + $1.saved }
        var spentBy: [String: Int] = [:]
        for row in rows { spentBy.merge(row.spent, uniquingKeysWith: +) }
        let spent = spentBy.values.reduce(0, +)
        html += "<p>\(total) pulls · <span class=\"ok\">\(saved) served without spending quota</span> · "
        html += "<span class=\(spent > 0 ? "\"bad\"" : "\"muted\"")>\(spent) spent</span>\(spentBy.isEmpty ? "" : " (\(esc(spentList(spentBy))))")"
        html += " · <a href=\"/_mirrorgate/report.json\">report.json</a></p>\n"

        // One line per source: what it served for free, and the quota spent on it.
        var names = rows.map(\.key)
        for name in spentBy.keys.sorted() where !names.contains(name) { names.append(name) }
        let widest = max(1, names.map { name in max(spentBy[name] ?? 0, rows.first { $0.key == name }?.saved ?? 0) }.max() ?? 1)
        html += "<h3>Spend against savings per upstream</h3>\n<table class=\"chart\"><tbody>\n"
        for name in names {
            let s = spentBy[name] ?? 0
            let v = rows.first { $0.key == name }?.saved ?? 0
            html += "<tr><th>\(esc(name))</th><td>"
            html += "<span class=\"bar spent\" style=\"width:\(width(s, of: widest))\"></span>\(s) spent<br>"
            html += "<span class=\"bar saved\" style=\"width:\(width(v, of: widest))\"></span>\(v) saved</td></tr>\n"
        }
        html += "</tbody></table>\n"
        html += table("Top repositories", "Repository", pulls.repositories)
        html += table("Top clients", "Client", pulls.clients)
        return html
    }

    /// A bar length in rem (at most 24).
    static func width(_ value: Int, of widest: Int) -> String {
        String(format: "%.2frem", 24 * Double(value) / Double(widest))
    }

    static func spentList(_ spent: [String: Int]) -> String {
        spent.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    static func table(_ title: String, _ column: String, _ report: PullReport) -> String {
        var html = "<h3>\(esc(title))</h3>\n<table><thead><tr><th>\(esc(column))</th><th>Pulls</th><th>Digests</th><th>Spent</th><th>Saved</th><th>Last pull</th></tr></thead><tbody>\n"
        for row in report.rows.prefix(top) {
            html += "<tr><td><code>\(esc(row.key))</code></td><td class=\"num\">\(row.pulls)</td><td class=\"num\">\(row.digests)</td>"
            html += "<td>\(row.spent.isEmpty ? "—" : esc(spentList(row.spent)))</td><td class=\"num\">\(row.saved)</td>"
            html += "<td>\(esc(row.lastPull.map(time) ?? "—"))</td></tr>\n"
        }
        html += "</tbody></table>\n"
        if report.rows.count > top { html += "<p class=\"muted\">\(report.rows.count - top) more in report.json.</p>\n" }
        return html
    }

    static func policySection(_ extras: Extras, registries: [String]) -> String {
        guard !extras.policies.isEmpty else { return "" }
        var html = "<h2>Repository policy</h2>\n<table><thead><tr><th>Registry</th><th>Allow</th><th>Deny (wins)</th><th>Denied since start</th></tr></thead><tbody>\n"
        for registry in registries {
            guard let policy = extras.policies[registry] else { continue }
            html += "<tr><td><code>\(esc(registry))</code></td>"
            html += "<td>\(policy.allow.map { esc($0.map(\.pattern).joined(separator: ", ")) } ?? "every repository")</td>"
            html += "<td>\(policy.deny.isEmpty ? "—" : esc(policy.deny.map(\.pattern).joined(separator: ", ")))</td>"
            html += "<td class=\"num\">\(extras.denialCounts[registry] ?? 0)</td></tr>\n"
        }
        html += "</tbody></table>\n"
        if !extras.recentDenials.isEmpty {
            html += "<h3>Recent denials</h3>\n<table><thead><tr><th>Time</th><th>Repository</th><th>Rule</th><th>Client</th></tr></thead><tbody>\n"
            for d in extras.recentDenials {
                html += "<tr><td>\(esc(time(d.at)))</td><td><code>\(esc(d.registry))/\(esc(d.repository))</code></td><td>\(esc(d.rule))</td><td>\(esc(d.client))</td></tr>\n"
            }
            html += "</tbody></table>\n"
        }
        return html
    }
}
