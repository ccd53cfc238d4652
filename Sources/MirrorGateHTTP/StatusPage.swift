import Foundation
import MirrorGateConfig
import MirrorGateCore
import MirrorGateStorage

/// The status page at `/_mirrorgate/`: one server-rendered HTML document, no scripts, no
/// external assets. Every value is escaped; nothing on it is secret (credentials never reach
/// ``GatewayStatus``).
public enum StatusPage {
    /// What the page shows besides ``GatewayStatus``: the last day of the pull ledger, and the
    /// repository policies with their denials.
    public struct Extras: Sendable {
        public struct Pulls: Sendable {
            public var repositories: PullReport
            public var clients: PullReport
            public var upstreams: PullReport
            public init(repositories: PullReport, clients: PullReport, upstreams: PullReport) {
                self.repositories = repositories
                self.clients = clients
                self.upstreams = upstreams
            }
        }

        /// nil without a ledger, or when it could not be read.
        public var pulls: Pulls?
        public var policies: [String: RepositoryPolicy]
        public var denialCounts: [String: Int]
        /// Newest first.
        public var recentDenials: [PolicyDenials.Denial]

        public init(pulls: Pulls? = nil, policies: [String: RepositoryPolicy] = [:], denialCounts: [String: Int] = [:], recentDenials: [PolicyDenials.Denial] = []) {
            self.pulls = pulls
            self.policies = policies
            self.denialCounts = denialCounts
            self.recentDenials = recentDenials
        }
    }

    public static func render(_ status: GatewayStatus, extras: Extras = Extras()) -> String {
        var html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta http-equiv="refresh" content="15">
        <title>MirrorGate status</title>
        <style>
        body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem;color:#1d2329;background:#fafbfc}
        h1{font-size:1.4rem;margin:0 0 .2rem} h2{font-size:1.1rem;margin:1.6rem 0 .5rem} h3{font-size:1rem;margin:1rem 0 .4rem}
        .muted{color:#66707a} table{border-collapse:collapse;width:100%;background:#fff;margin-bottom:.6rem}
        th,td{border:1px solid #dde2e6;padding:.35rem .55rem;text-align:left;vertical-align:top}
        th{background:#f0f3f5;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums}
        .ok{color:#17803d;font-weight:600} .bad{color:#c0262d;font-weight:600} .warn{color:#a15c00;font-weight:600}
        .gauge{display:inline-block;width:9rem;height:.7rem;background:#e6eaee;border-radius:.35rem;overflow:hidden;vertical-align:middle;margin-right:.4rem}
        .gauge>span{display:block;height:100%;background:#2f7ed8} .gauge.low>span{background:#c0262d}
        code{font-size:.92em}
        .chart td{border:none;padding:.15rem .55rem} .chart th{background:none;border:none;width:12rem;text-align:right}
        .bar{display:inline-block;height:.8rem;vertical-align:middle;margin-right:.4rem;border-radius:.2rem;min-width:1px}
        .bar.spent{background:#c0262d} .bar.saved{background:#17803d}
        </style></head><body>
        <h1>MirrorGate</h1>
        <p class="muted">Generated \(esc(time(status.generatedAt))) · up since \(esc(time(status.startedAt))) · refreshes every 15 s · <a href="/_mirrorgate/status.json">status.json</a></p>

        """
        html += cacheSection(status)
        html += pullsSection(extras.pulls, generatedAt: status.generatedAt)
        html += policySection(extras, registries: status.registries.map(\.registry))
        for registry in status.registries {
            html += "<h2>Registry <code>\(esc(registry.registry))</code></h2>\n"
            html += "<table><thead><tr><th>#</th><th>Upstream</th><th>Health</th><th>Circuit</th><th>Budget</th><th>Resets</th><th>Last error</th></tr></thead><tbody>\n"
            for (index, entry) in registry.upstreams.enumerated() {
                let healthClass = entry.health == "healthy" ? "ok" : "bad"
                let circuitClass = entry.circuit == "closed" ? "ok" : entry.circuit == "open" ? "bad" : "warn"
                html += "<tr><td class=\"num\">\(index + 1)</td>"
                html += "<td><b>\(esc(entry.name))</b><br><span class=\"muted\">\(esc(entry.url))\(entry.authenticated ? " · with credentials" : "")</span></td>"
                html += "<td class=\"\(healthClass)\">\(esc(entry.health))</td>"
                html += "<td class=\"\(circuitClass)\">\(esc(entry.circuit))\(entry.consecutiveFailures > 0 ? " (\(entry.consecutiveFailures) failures)" : "")</td>"
                html += "<td>\(budget(entry.budget))</td>"
                html += "<td>\(esc(resets(entry.budget)))</td>"
                html += "<td>\(esc(entry.lastError ?? "—"))</td></tr>\n"
            }
            html += "</tbody></table>\n"
        }
        html += "<h2>Recent failovers</h2>\n"
        if status.recentFailovers.isEmpty {
            html += "<p class=\"muted\">No failovers since start: every request went to the first upstream it could use.</p>\n"
        } else {
            html += "<table><thead><tr><th>Time</th><th>Registry</th><th>Image</th><th>Served by</th><th>Skipped</th></tr></thead><tbody>\n"
            for f in status.recentFailovers {
                html += "<tr><td>\(esc(time(f.at)))</td><td>\(esc(f.registry))</td><td><code title=\"\(esc(f.reference))\">\(esc(image(f.repository, f.reference)))</code></td>"
                html += "<td>\(esc(f.servedBy))</td><td>\(esc(f.skipped))</td></tr>\n"
            }
            html += "</tbody></table>\n"
        }
        html += "</body></html>\n"
        return html
    }

    static func cacheSection(_ status: GatewayStatus) -> String {
        let c = status.cache
        let fraction = c.maxSizeBytes > 0 ? min(1, Double(c.sizeBytes) / Double(c.maxSizeBytes)) : 0
        let ratio = c.hitRatio.map { String(format: "%.1f %%", $0 * 100) } ?? "no requests yet"
        var html = "<h2>Cache</h2>\n<table><tbody>\n"
        html += "<tr><th>Used</th><td><span class=\"gauge\"><span style=\"width:\(String(format: "%.1f", fraction * 100))%\"></span></span>"
        html += "\(esc(bytes(c.sizeBytes))) of \(esc(bytes(c.maxSizeBytes))) (\(String(format: "%.1f", fraction * 100)) %) · \(c.objects) objects</td></tr>\n"
        html += "<tr><th>Hit ratio</th><td>\(esc(ratio)) · manifests \(c.manifestHits) hits / \(c.manifestMisses) misses · blobs \(c.blobHits) hits / \(c.blobMisses) misses</td></tr>\n"
        html += "<tr><th>Storage</th><td>\(c.writable ? "<span class=\"ok\">writable</span>" : "<span class=\"bad\">cache storage not writable</span> (\(esc(c.unwritableReason ?? "unknown reason"))): blobs pass through, verified, uncached")</td></tr>\n"
        html += "<tr><th>Fetching now</th><td>\(status.singleFlight.blobFetches) blobs, \(status.singleFlight.blobWaiters) clients following them</td></tr>\n"
        if let r = status.tagRevalidations {
            html += "<tr><th>Tags revalidating</th><td>\(r.inFlight) in the background now · \(r.succeeded) confirmed (\(r.moved) moved) · "
            html += r.failed == 0 ? "0 failed" : "<span class=\"bad\">\(r.failed) failed</span>"
            if let last = r.lastFailure {
                html += " · last: \(esc(last.tag)) at \(esc(ISO8601DateFormatter().string(from: last.at))): \(esc(last.error)) (served from the cache)"
            }
            html += "</td></tr>\n"
        }
        html += "</tbody></table>\n"
        return html
    }

    /// `name:tag`, or `name@sha256:0123456789ab…` (digests shortened; the full one is in the title).
    static func image(_ repository: String, _ reference: String) -> String {
        guard let colon = reference.firstIndex(of: ":"), reference[..<colon].allSatisfy({ $0.isLetter || $0.isNumber }),
              reference.count > 40
        else { return "\(repository):\(reference)" }
        return "\(repository)@\(reference.prefix(colon.utf16Offset(in: reference) + 13))…"
    }

    static func budget(_ b: BudgetStatus?) -> String {
        guard let b, let limit = b.limit, limit > 0 else {
            return b.map { "unlimited · \($0.spentInWindow) GETs spent" } ?? "unlimited"
        }
        let remaining = b.remaining ?? limit
        let fraction = Double(remaining) / Double(limit)
        let low = fraction < 0.1 ? " low" : ""
        return "<span class=\"gauge\(low)\"><span style=\"width:\(String(format: "%.1f", fraction * 100))%\"></span></span>\(remaining) of \(limit) left · \(b.spentInWindow) spent"
    }

    static func resets(_ b: BudgetStatus?) -> String {
        if let blocked = b?.blockedUntil { return "blocked until " + time(blocked) }
        if let reset = b?.resetAt { return time(reset) }
        return "—"
    }

    /// `1.5 GiB`
    public static func bytes(_ n: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(n)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(n) B" : "\(String(format: "%.1f", value)) \(units[unit])"
    }

    static func time(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }

    /// HTML-escapes text for element content and double-quoted attributes.
    public static func esc(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
