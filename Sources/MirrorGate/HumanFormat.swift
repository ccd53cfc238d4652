import Foundation
import MirrorGateHTTP

/// How the CLI writes sizes, rates, durations and times.
enum HumanFormat {
    /// `512 B`, `1.5 KiB`, `12.3 MiB`, `1.0 GiB`.
    static func bytes(_ count: UInt64) -> String {
        StatusPage.bytes(count)
    }

    /// `12.3 MiB` whatever the size (the unit of `mirrorgate warm`'s lines).
    static func mebibytes(_ count: UInt64) -> String {
        String(format: "%.1f MiB", Double(count) / 1_048_576)
    }

    /// `4.2 MiB/s`.
    static func rate(bytes: UInt64, over duration: Duration) -> String {
        let seconds = duration.seconds
        guard seconds > 0 else { return "- MiB/s" }
        return String(format: "%.1f MiB/s", Double(bytes) / 1_048_576 / seconds)
    }

    /// `0.4s`, `12.0s`, `3m05s`, `2h03m`, `3d04h`.
    static func duration(_ seconds: Double) -> String {
        if seconds < 60 { return String(format: "%.1fs", max(0, seconds)) }
        let total = Int(seconds.rounded())
        if total < 3600 { return String(format: "%dm%02ds", total / 60, total % 60) }
        if total < 86400 { return String(format: "%dh%02dm", total / 3600, total % 3600 / 60) }
        return String(format: "%dd%02dh", total / 86400, total % 86400 / 3600)
    }

    /// `2026-11-29 08:40:12Z`.
    static func timestamp(_ date: Date) -> String {
        timestampFormatter.string(from: date)
    }

    /// `08:40:12Z`.
    static func time(_ date: Date) -> String {
        timeFormatter.string(from: date)
    }

    /// A percentage with one decimal: `12.5 %`.
    static func percent(_ fraction: Double) -> String {
        String(format: "%.1f %%", fraction * 100)
    }

    private static var timestampFormatter: DateFormatter { formatter("yyyy-MM-dd HH:mm:ss'Z'") }
    private static var timeFormatter: DateFormatter { formatter("HH:mm:ss'Z'") }

    private static func formatter(_ format: String) -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = format
        return formatter
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
