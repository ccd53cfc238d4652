import MirrorGateConfig
import Testing

@Suite("ConfigValues")
struct ConfigValuesTests {
    // MARK: Durations

    static let durations: [(String, Duration)] = [
        ("500ms", .milliseconds(500)),
        ("1ms", .milliseconds(1)),
        ("15s", .seconds(15)),
        ("10m", .seconds(600)),
        ("6h", .seconds(6 * 3600)),
        ("1d", .seconds(86_400)),
        ("7d", .seconds(7 * 86_400)),
        ("1h30m", .seconds(5400)),
        ("1d2h3m4s5ms", .seconds(86_400 + 7200 + 180 + 4) + .milliseconds(5)),
        ("90s", .seconds(90)),
        ("0", .zero),
        ("0s", .zero),
        ("0ms", .zero),
        (" 10m ", .seconds(600)),
        ("999999999999ms", .milliseconds(999_999_999_999)),
    ]

    @Test(arguments: durations)
    func parsesDurations(_ text: String, _ expected: Duration) throws {
        #expect(try ConfigValues.parseDuration(text) == expected)
    }

    @Test(arguments: ["", " ", "10x", "-1s", "+1s", "1.5h", "10", "h", "ms", "1h30", "1h 30m", "1H", "1S", "1sec", "1 s",
                      "1000000000000s", "ten", "1e3s", "\u{0661}s"])
    func rejectsBadDurations(_ text: String) {
        let error = #expect(throws: ValueParseError.self) { try ConfigValues.parseDuration(text) }
        #expect(error?.message.isEmpty == false)
    }

    /// Found by the property suite: `999999999999d` parsed (and crashed `format` and the
    /// nanosecond timeouts), and enough such terms overflowed `Duration` itself.
    @Test(arguments: ["999999999999d", "106752d", "9223372036855ms", "9999999999999h", "99999999999999999999s",
                      String(repeating: "999999999999d", count: 3000)])
    func rejectsDurationsPastTheMaximum(_ text: String) {
        let error = #expect(throws: ValueParseError.self) { try ConfigValues.parseDuration(text) }
        #expect(error?.message.contains("too long") == true)
    }

    @Test func theMaximumDurationParsesAndFormats() throws {
        #expect(try ConfigValues.parseDuration("9223372036854ms") == ConfigValues.maxDuration)
        #expect(try ConfigValues.parseDuration("106751d") == .seconds(106_751 * 86_400))
        #expect(try ConfigValues.parseDuration(ConfigValues.format(ConfigValues.maxDuration)) == ConfigValues.maxDuration)
        // Any Duration formats without overflow, even ones no configuration can hold.
        #expect(ConfigValues.format(.seconds(Int64.max)) == "106751991167300d15h30m7s")
    }

    static let formatted: [(Duration, String)] = [
        (.zero, "0s"),
        (.milliseconds(500), "500ms"),
        (.seconds(15), "15s"),
        (.seconds(600), "10m"),
        (.seconds(5400), "1h30m"),
        (.seconds(6 * 3600), "6h"),
        (.seconds(86_400), "1d"),
        (.seconds(86_400 + 1) + .milliseconds(1), "1d1s1ms"),
        (.seconds(90_061), "1d1h1m1s"),
    ]

    @Test(arguments: formatted)
    func formatsDurations(_ duration: Duration, _ expected: String) throws {
        #expect(ConfigValues.format(duration) == expected)
        #expect(try ConfigValues.parseDuration(expected) == duration)
    }

    @Test func formatParseRoundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let ms = Int64.random(in: 0...(400 * 86_400_000), using: &generator)
            let duration = Duration.milliseconds(ms)
            let text = ConfigValues.format(duration)
            #expect(try ConfigValues.parseDuration(text) == duration, "\(ms)ms formatted as \(text)")
        }
    }

    // MARK: Sizes

    static let sizes: [(String, UInt64)] = [
        ("0", 0),
        ("123", 123),
        ("123B", 123),
        ("1KiB", 1024),
        ("64MiB", 64 << 20),
        ("50GiB", 50 << 30),
        ("1TiB", 1 << 40),
        ("2 TiB", 2 << 40),
        (" 10 MiB ", 10 << 20),
        ("16777215TiB", 16_777_215 << 40),
        ("999999999999999", 999_999_999_999_999),
    ]

    @Test(arguments: sizes)
    func parsesSizes(_ text: String, _ expected: UInt64) throws {
        #expect(try ConfigValues.parseByteSize(text) == expected)
    }

    @Test(arguments: ["", "abc", "50GB", "50gb", "50G", "1kib", "1KB", "1PiB", "1.5GiB", "-1GiB", "GiB", "1 0GiB", "0x10",
                      "16777216TiB", "99999999999999TiB", "9999999999999999", "18446744073709551615"])
    func rejectsBadSizes(_ text: String) {
        let error = #expect(throws: ValueParseError.self) { try ConfigValues.parseByteSize(text) }
        #expect(error?.message.isEmpty == false)
    }

    @Test func overflowIsReported() {
        let error = #expect(throws: ValueParseError.self) { try ConfigValues.parseByteSize("99999999999999TiB") }
        #expect(error?.message.contains("too large") == true)
    }
}
