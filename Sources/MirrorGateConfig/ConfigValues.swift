/// A value that did not parse; the caller adds the key path.
public struct ValueParseError: Error, Sendable {
    public let message: String
}

/// Parsers for the value formats `gateway.yaml` uses.
public enum ConfigValues {
    /// The longest duration a value may give: 9,223,372,036,854 ms (a little over 106751d),
    /// so that it fits in the 64-bit nanoseconds that NIO's `TimeAmount` and the timers use,
    /// and in the milliseconds `format` works in.
    public static let maxDuration = Duration.milliseconds(maxMilliseconds)
    static let maxMilliseconds: Int64 = Int64.max / 1_000_000

    /// Parses durations such as `500ms`, `15s`, `10m`, `6h`, `1d`, `1h30m` or `0`, up to
    /// `maxDuration`.
    public static func parseDuration(_ s: String) throws(ValueParseError) -> Duration {
        let text = s.trimmingCharacters(in: " ")
        if text == "0" { return .zero }
        guard !text.isEmpty else { throw ValueParseError(message: "expected a duration such as 500ms, 15s, 10m, 6h or 1d") }
        // Summed in milliseconds with overflow checks: `999999999999d` repeated would overflow
        // even `Duration`'s 128 bits, and one such term overflows 64-bit nanoseconds.
        let tooLong = ValueParseError(message: "duration '\(s)' is too long: at most 106751d")
        var total: Int64 = 0
        var rest = Substring(text)
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty else {
                throw ValueParseError(message: "invalid duration '\(s)': expected a number followed by ms, s, m, h or d")
            }
            guard let number = Int64(digits) else { throw tooLong }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix { $0.isASCII && $0.isLetter }
            rest = rest.dropFirst(unit.count)
            let millisecondsPerUnit: Int64
            switch unit {
            case "ms": millisecondsPerUnit = 1
            case "s": millisecondsPerUnit = 1000
            case "m": millisecondsPerUnit = 60_000
            case "h": millisecondsPerUnit = 3_600_000
            case "d": millisecondsPerUnit = 86_400_000
            default:
                throw ValueParseError(message: "invalid duration '\(s)': unit must be ms, s, m, h or d")
            }
            let (term, overflow) = number.multipliedReportingOverflow(by: millisecondsPerUnit)
            let (sum, sumOverflow) = total.addingReportingOverflow(term)
            guard !overflow, !sumOverflow, sum <= maxMilliseconds else { throw tooLong }
            total = sum
        }
        return .milliseconds(total)
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
        // 128-bit: any `Duration` in whole seconds times 1000 fits, where 64 bits overflow.
        var ms = Int128(duration.components.seconds) * 1000 + Int128(duration.components.attoseconds / 1_000_000_000_000_000)
        if ms == 0 { return "0s" }
        var out = ""
        for (unit, size) in [("d", Int128(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] where ms >= size {
            out += "\(ms / size)\(unit)"
            ms %= size
        }
        return out
    }
}
