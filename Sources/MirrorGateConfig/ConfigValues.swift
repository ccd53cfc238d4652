/// A value that did not parse; the caller adds the key path.
public struct ValueParseError: Error, Sendable {
    public let message: String
}

/// Parsers for the value formats `gateway.yaml` uses.
public enum ConfigValues {
    /// Parses durations such as `500ms`, `15s`, `10m`, `6h`, `1d`, `1h30m` or `0`.
    public static func parseDuration(_ s: String) throws(ValueParseError) -> Duration {
        let text = s.trimmingCharacters(in: " ")
        if text == "0" { return .zero }
        guard !text.isEmpty else { throw ValueParseError(message: "expected a duration such as 500ms, 15s, 10m, 6h or 1d") }
        var total = Duration.zero
        var rest = Substring(text)
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 12, let number = Int64(digits) else {
                throw ValueParseError(message: "invalid duration '\(s)': expected a number followed by ms, s, m, h or d")
            }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix { $0.isASCII && $0.isLetter }
            rest = rest.dropFirst(unit.count)
            switch unit {
            case "ms": total += .milliseconds(number)
            case "s": total += .seconds(number)
            case "m": total += .seconds(number * 60)
            case "h": total += .seconds(number * 3600)
            case "d": total += .seconds(number * 86400)
            default:
                throw ValueParseError(message: "invalid duration '\(s)': unit must be ms, s, m, h or d")
            }
        }
        return total
    }

    /// Parses sizes such as `64MiB`, `50GiB`, `1TiB` or a plain number of bytes.
    public static func parseByteSize(_ s: String) throws(ValueParseError) -> UInt64 {
        let text = s.trimmingCharacters(in: " ")
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = text.dropFirst(digits.count).trimmingCharacters(in: " ")
        guard !digits.isEmpty, digits.count <= 15, let number = UInt64(digits) else {
            throw ValueParseError(message: "invalid size '\(s)': expected a number with KiB, MiB, GiB or TiB")
        }
        let multiplier: UInt64
        switch unit {
        case "", "B": multiplier = 1
        case "KiB": multiplier = 1 << 10
        case "MiB": multiplier = 1 << 20
        case "GiB": multiplier = 1 << 30
        case "TiB": multiplier = 1 << 40
        default:
            throw ValueParseError(message: "invalid size '\(s)': unit must be KiB, MiB, GiB or TiB")
        }
        let (value, overflow) = number.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { throw ValueParseError(message: "size '\(s)' is too large") }
        return value
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var sub = Substring(self)
        while sub.first == set { sub.removeFirst() }
        while sub.last == set { sub.removeLast() }
        return String(sub)
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        String(self).trimmingCharacters(in: set)
    }
}

extension ConfigValues {
    /// Formats a duration the way the configuration writes it (`10m`, `1h30m`, `500ms`).
    public static func format(_ duration: Duration) -> String {
        var ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if ms == 0 { return "0s" }
        var out = ""
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] where ms >= size {
            out += "\(ms / size)\(unit)"
            ms %= size
        }
        return out
    }
}
