// The oracles of the header-parser fuzz targets, in one place for both users: the libFuzzer
// targets in fuzz/ (fuzz/Sources/HeaderChecks links this file; a violation traps there) and the
// property suite (HeaderParserFuzzProperties runs them on the targets' seeds, dictionaries
// and mutations; a violation is a test failure). In fuzz/ the parsers are the module
// UpstreamParsers, here MirrorGateUpstream.
import Foundation
import NIOHTTP1
import RegistryModel

#if canImport(UpstreamParsers)
import UpstreamParsers
#else
import MirrorGateUpstream
#endif

/// What must hold for any input of each header-parser fuzz target: a list of violations,
/// empty when the input was handled correctly. Each takes the raw bytes a fuzzer produces.
public enum HeaderParserChecks {
    /// The header-parser targets, by fuzz target name.
    public static let targets: [String: @Sendable ([UInt8]) -> [String]] = [
        "FuzzAuthChallenge": authChallenge, "FuzzRateLimit": rateLimit, "FuzzRetryAfter": retryAfter,
        "FuzzContentRange": contentRange, "FuzzRange": range, "FuzzAccept": accept,
    ]

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// `WWW-Authenticate`: schemes and parameter names are lowercase tokens; no more
    /// challenges, and no longer values, than the input has bytes.
    public static func authChallenge(_ bytes: [UInt8]) -> [String] {
        let s = text(bytes)
        func isToken(_ t: String) -> Bool {
            !t.isEmpty && t.utf8.allSatisfy { c in
                (0x30...0x39).contains(c) || (0x61...0x7A).contains(c) || "!#$%&'*+-.^_`|~/".utf8.contains(c)
            }
        }
        var violations: [String] = []
        let challenges = AuthChallenge.parse(s)
        if challenges.count > s.utf8.count { violations.append("\(challenges.count) challenges from \(s.utf8.count) bytes") }
        for challenge in challenges {
            if !isToken(challenge.scheme) { violations.append("scheme \(challenge.scheme.debugDescription)") }
            for (name, value) in challenge.parameters {
                if !isToken(name) { violations.append("parameter name \(name.debugDescription)") }
                if value.utf8.count > s.utf8.count { violations.append("value of \(name) longer than the header") }
            }
        }
        return violations
    }

    /// `ratelimit-limit`, a newline, `ratelimit-remaining`: counts in `0...maxCount`, a window
    /// in `(0, maxWindow]`, and the same answer from `HTTPHeaders`.
    public static func rateLimit(_ bytes: [UInt8]) -> [String] {
        let s = text(bytes)
        let parts = s.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        let limit = String(parts[0])
        let remaining = parts.count > 1 ? String(parts[1]) : nil
        let parsed = RateLimitHeaders(limitHeader: limit, remainingHeader: remaining)
        var violations: [String] = []
        for (name, n) in [("limit", parsed.limit), ("remaining", parsed.remaining)] {
            if let n, !(0...RateLimitHeaders.maxCount).contains(n) { violations.append("\(name) \(n)") }
        }
        if let window = parsed.window, !(window > .zero && window <= RateLimitHeaders.maxWindow) { violations.append("window \(window)") }
        var headers = HTTPHeaders()
        headers.add(name: "ratelimit-limit", value: limit)
        if let remaining { headers.add(name: "x-ratelimit-remaining", value: remaining) }
        if let fromHeaders = RateLimitHeaders(headers: headers) {
            if fromHeaders != parsed { violations.append("from headers \(fromHeaders) != \(parsed)") }
        } else if parsed.limit != nil || parsed.remaining != nil {
            violations.append("no headers but \(parsed)")
        }
        return violations
    }

    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// `Retry-After`: no date, or one within a day from now; the delay the gateway would send
    /// for it is 1 to 86400 seconds.
    public static func retryAfter(_ bytes: [UInt8]) -> [String] {
        guard let date = RetryAfter.parse(text(bytes), now: now) else { return [] }
        var violations: [String] = []
        if !(date >= now && date <= now.addingTimeInterval(RetryAfter.maximum)) { violations.append("date \(date)") }
        let seconds = RetryAfter.delaySeconds(until: date, now: now)
        if !(1...Int(RetryAfter.maximum)).contains(seconds) { violations.append("delay \(seconds)") }
        return violations
    }

    /// `Content-Range`: a range that exists, whose numbers and count fit an `Int`, and that
    /// renders back to a header parsing to itself.
    public static func contentRange(_ bytes: [UInt8]) -> [String] {
        guard let range = ContentRange(text(bytes)) else { return [] }
        var violations: [String] = []
        if !(range.first <= range.last && range.last < ContentRange.maxLength) { violations.append("\(range)") }
        if let complete = range.complete, !(range.last < complete && complete <= ContentRange.maxLength) { violations.append("\(range)") }
        let rendered = "bytes \(range.first)-\(range.last)/\(range.complete.map(String.init) ?? "*")"
        if ContentRange(rendered) != range { violations.append("\(rendered) does not round-trip") }
        return violations
    }

    /// `Range`: the first 8 bytes are a representation length, the rest the header. A resolved
    /// range lies inside the representation (also for lengths 0, 1 and `UInt64.max`); errors are
    /// 416 `RANGE_INVALID`.
    public static func range(_ bytes: [UInt8]) -> [String] {
        var length: UInt64 = 0
        for b in bytes.prefix(8) { length = length << 8 | UInt64(b) }
        let header = String(decoding: bytes.dropFirst(8), as: UTF8.self)
        var violations: [String] = []
        do throws(RegistryError) {
            guard let range = try ByteRange.parse(header) else { return [] }
            for n in [length, 0, 1, UInt64.max] {
                if let resolved = range.resolve(length: n), !(resolved.lowerBound <= resolved.upperBound && resolved.upperBound < n) {
                    violations.append("\(header.debugDescription) resolved to \(resolved) for \(n)")
                }
            }
        } catch {
            if !(error.code == .sizeInvalid && error.status == 416) { violations.append("error \(error)") }
        }
        return violations
    }

    /// `Accept` values, one per line: accepted types are trimmed, non-empty, without list or
    /// parameter separators; deciding on any manifest type does not trap.
    public static func accept(_ bytes: [UInt8]) -> [String] {
        let negotiation = ManifestNegotiation(acceptHeaders: text(bytes).split(separator: "\n").map(String.init))
        var violations: [String] = []
        for type in negotiation.accepted {
            if type.isEmpty || type.unicodeScalars.contains(",") || type.unicodeScalars.contains(";") { violations.append("type \(type.debugDescription)") }
            if type.first == " " || type.last == " " || type.first == "\t" || type.last == "\t" { violations.append("untrimmed \(type.debugDescription)") }
        }
        for mediaType in [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest] {
            _ = negotiation.decide(mediaType: mediaType, requestedByTag: bytes.count % 2 == 0)
        }
        return violations
    }
}
