import Foundation
import PropertyBased

/// Generators of hostile and of grammar-valid input for the parser properties.
///
/// Hostile strings are built from pieces that parsers trip over: separators, traversal
/// (`..`, `%2e%2e`, `//`, NUL, backslash), numbers at and past the 64-bit limits, quotes and
/// escapes, multi-scalar characters (a combining accent that glues itself to a `/` or `:`),
/// and arbitrary Unicode scalars.
enum HostileInput {
    typealias RNG = any SeededRandomNumberGenerator

    /// Iterations for a property: `count` times `PROPERTY_SCALE` from the environment (default 1,
    /// which keeps the whole suite to a few seconds; `PROPERTY_SCALE=50` is a deeper sweep).
    static func scaled(_ count: Int) -> Int {
        count * max(1, Int(ProcessInfo.processInfo.environment["PROPERTY_SCALE"] ?? "") ?? 1)
    }

    /// Pieces every hostile string may be made of; `extra` adds the ones a parser cares about.
    static let commonPieces: [String] = [
        "..", ".", "%2e%2e", "%2E%2E", "%2f", "//", "/", "\0", "\\", ":", "@", "%", "%00", "-", "--", "_", "__",
        " ", "\t", "\r\n", "\n", "=", ",", ";", "\"", "'", "*", "?", "#", "&", "+",
        "\u{301}", "e\u{301}", "é", "\u{FEFF}", "\u{200B}", "\u{FFFD}", "𝟘", "Ａ", "ﬀ", "İ", "\u{212A}", "ß", "🙂",
        "0", "00", "1", "9", "-1", "+1", "255", "65535", "65536",
        "9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616",
        "99999999999999999999", "340282366920938463463374607431768211456",
        "a", "z", "A", "Z", "library", "ubuntu", "latest", "sha256", "sha512",
    ]

    static func int(_ rng: inout RNG, _ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }

    static func pick<T>(_ items: [T], _ rng: inout RNG) -> T { items[int(&rng, 0...(items.count - 1))] }

    /// Any Unicode scalar (surrogates excluded, as a Swift string cannot hold them).
    static func anyScalar(_ rng: inout RNG) -> Character {
        while true {
            let value = int(&rng, 0...3) == 0 ? UInt32(int(&rng, 0...0x10FFFF)) : UInt32(int(&rng, 0...0x2FF))
            if let scalar = Unicode.Scalar(value) { return Character(scalar) }
        }
    }

    /// Printable ASCII.
    static func asciiChar(_ rng: inout RNG) -> Character { Character(Unicode.Scalar(UInt8(int(&rng, 0x20...0x7E)))) }

    static func run(of alphabet: String, _ count: ClosedRange<Int>, _ rng: inout RNG) -> String {
        let chars = Array(alphabet)
        return String((0..<int(&rng, count)).map { _ in pick(chars, &rng) })
    }

    /// A string of up to `maxParts` pieces; `extra` pieces are as likely as all common ones together.
    static func string(_ rng: inout RNG, extra: [String] = [], maxParts: Int = 24) -> String {
        var out = ""
        for _ in 0..<int(&rng, 0...maxParts) {
            switch int(&rng, 0...9) {
            case 0...2: out += pick(commonPieces, &rng)
            case 3...4: out.append(asciiChar(&rng))
            case 5: out.append(anyScalar(&rng))
            case 6: out += run(of: "abcdefghijklmnopqrstuvwxyz0123456789", 1...12, &rng)
            default: out += extra.isEmpty ? pick(commonPieces, &rng) : pick(extra, &rng)
            }
        }
        return out
    }

    /// A generator of hostile strings.
    static func strings(extra: [String] = [], maxParts: Int = 24) -> Generator<String, Shrink.None<String>> {
        Generator { rng in string(&rng, extra: extra, maxParts: maxParts) }
    }

    // MARK: Grammar-valid input (distribution spec)

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    static func nameComponent(_ rng: inout RNG) -> String {
        let alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
        var out = run(of: alnum, 1...8, &rng)
        for _ in 0..<int(&rng, 0...3) {
            out += pick([".", "_", "__", "-", "--", "---"], &rng)
            out += run(of: alnum, 1...8, &rng)
        }
        return out
    }

    /// A repository name of 1...5 components (at most 209 bytes), or one near the 255-byte limit.
    static func repositoryName(_ rng: inout RNG) -> String {
        if int(&rng, 0...9) == 0 {
            return run(of: "abcdefghijklmnopqrstuvwxyz0123456789", 250...255, &rng)
        }
        return (0..<int(&rng, 1...5)).map { _ in nameComponent(&rng) }.joined(separator: "/")
    }

    /// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
    static func tag(_ rng: inout RNG) -> String {
        let word = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
        let long = int(&rng, 0...9) == 0
        return run(of: word, 1...1, &rng) + run(of: word + ".-", long ? 100...127 : 0...20, &rng)
    }

    /// `sha256:<64 hex>` or `sha512:<128 hex>`.
    static func digest(_ rng: inout RNG) -> String {
        int(&rng, 0...1) == 0
            ? "sha256:" + run(of: "0123456789abcdef", 64...64, &rng)
            : "sha512:" + run(of: "0123456789abcdef", 128...128, &rng)
    }

    /// A decimal number of 1...40 digits (so past `UInt64.max` and `UInt128.max`), with leading
    /// zeros sometimes.
    static func decimal(_ rng: inout RNG) -> String {
        switch int(&rng, 0...5) {
        case 0: return pick(["0", "1", "18446744073709551615", "18446744073709551616", "99999999999999999999", "000000000000000000000000042"], &rng)
        case 1: return String(repeating: "0", count: int(&rng, 1...25)) + run(of: "0123456789", 1...5, &rng)
        case 2: return run(of: "0123456789", 18...40, &rng)
        default: return run(of: "0123456789", 1...6, &rng)
        }
    }

    /// A value as distribution's grammar or RFC 9110 `quoted-string` would carry it: printable
    /// ASCII including `"`, `\` and `,`, and some non-ASCII.
    static func quotedContent(_ rng: inout RNG) -> String {
        var out = ""
        for _ in 0..<int(&rng, 0...30) {
            switch int(&rng, 0...5) {
            case 0: out += pick(["\"", "\\", ",", "=", " ", "\\\"", "\"\"", ", Basic realm=", "é", "repository:a/b:pull,push"], &rng)
            default: out.append(asciiChar(&rng))
            }
        }
        return out
    }
}
