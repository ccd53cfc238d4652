import Foundation
import Logging
import MirrorGateConfig
import MirrorGateStorage
import NIOCore
import NIOHTTP1
import PropertyBased
import RegistryModel
import Testing

@testable import MirrorGateCore
@testable import MirrorGateUpstream

/// Every path from an upstream's headers into arithmetic, fed hostile values (security
/// review, finding 2: `Retry-After: 9223372036854775807` and `w=9223372036854775807` trapped a
/// Double-to-Int conversion). Each parser's output is bounded, and so is what the budget
/// book, and the `Retry-After` a client gets, make of it.
@Suite("Properties: header arithmetic")
struct HeaderArithmeticProperties {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// Numbers at and past every limit, dates far out, and the pieces of both grammars.
    static let numberExtra = [
        "9223372036854775807", "9223372036854775808", "18446744073709551616", "86400", "86401", "0", "00", "-1", "+1", "1e30",
        "1.5", " ", "\t", ",", ";", "w=", ";w=", "GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Mon", "Jan", "99:99:99", "31", "2027",
    ]

    static func decimalOrHostile(_ rng: inout HostileInput.RNG) -> String {
        HostileInput.int(&rng, 0...1) == 0 ? HostileInput.decimal(&rng) : HostileInput.string(&rng, extra: numberExtra, maxParts: 8)
    }

    // MARK: Retry-After

    @Test func anyRetryAfterIsWithinADay() async {
        await propertyCheck(count: HostileInput.scaled(3000), input: Generator { rng in Self.decimalOrHostile(&rng) }) { value in
            if let date = RetryAfter.parse(value, now: Self.now) {
                #expect(date >= Self.now && date <= Self.now.addingTimeInterval(RetryAfter.maximum), "\(value.debugDescription)")
            }
        }
    }

    @Test func delaySecondsMatchTheNumberUpToADay() async {
        await propertyCheck(count: HostileInput.scaled(2000), input: Generator { rng in HostileInput.decimal(&rng) }) { digits in
            let expected = min(Double(digits) ?? .infinity, RetryAfter.maximum)
            #expect(RetryAfter.parse(digits, now: Self.now) == Self.now.addingTimeInterval(expected), "\(digits)")
        }
    }

    /// Any instant of years 1000-9999, written in each HTTP-date form by Foundation's
    /// formatter (ASCII only, so it is safe there), parses back, clamped to the next day.
    @Test func httpDatesRoundTripClamped() async {
        func formatter(_ format: String) -> DateFormatter {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = format
            return formatter
        }
        let imf = formatter("EEE, dd MMM yyyy HH:mm:ss 'GMT'"), rfc850 = formatter("EEEE, dd-MMM-yy HH:mm:ss 'GMT'")
        let asctime = formatter("EEE MMM d HH:mm:ss yyyy")
        let input = Generator { rng in
            HostileInput.int(&rng, 0...3) == 0
                ? Self.now.timeIntervalSince1970 + Double(HostileInput.int(&rng, -200_000...200_000))
                : Double(HostileInput.int(&rng, -30_610_224_000...253_402_300_799))
        }
        await propertyCheck(count: HostileInput.scaled(1000), input: input) { seconds in
            let date = Date(timeIntervalSince1970: seconds)
            let expected = min(max(date, Self.now), Self.now.addingTimeInterval(RetryAfter.maximum))
            let fixdate = imf.string(from: date)
            #expect(RetryAfter.parse(fixdate, now: Self.now) == expected, "\(fixdate)")
            var old = asctime.string(from: date)
            if old.count == 23 { old.insert(" ", at: old.index(old.startIndex, offsetBy: 8)) }  // `Nov  6`
            #expect(RetryAfter.parse(old, now: Self.now) == expected, "\(old)")
            // Two-digit years: only within 50 years of now do they mean the same instant.
            if abs(seconds - Self.now.timeIntervalSince1970) < 40 * 31_556_952 {
                let obsolete = rfc850.string(from: date)
                #expect(RetryAfter.parse(obsolete, now: Self.now) == expected, "\(obsolete)")
            }
        }
    }

    /// Whatever date reaches a client's `Retry-After` (a learned one, a persisted one, none
    /// that makes sense), the header is 1 to 86400 seconds.
    @Test func anyDateGivesABoundedDelay() async {
        let input = Generator { rng -> Double in
            HostileInput.pick([.infinity, -.infinity, .nan, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 9.223372036854776e18,
                               Double(HostileInput.int(&rng, Int.min...Int.max)), Double.random(in: -1e7...1e7, using: &rng)], &rng)
        }
        await propertyCheck(count: HostileInput.scaled(2000), input: input) { offset in
            let seconds = RetryAfter.delaySeconds(until: Self.now.addingTimeInterval(offset), now: Self.now)
            #expect((1...86_400).contains(seconds), "\(offset)")
            #expect(RetryAfter.clamp(Self.now.addingTimeInterval(offset), now: Self.now).timeIntervalSince(Self.now).magnitude <= RetryAfter.maximum)
        }
    }

    // MARK: The budget book: headers → dates → a client's Retry-After

    static let logger = Logger(label: "properties") { _ in SwiftLogNoOpLogHandler() }

    struct Answer: CustomStringConvertible {
        var status: Int
        var manifestGET: Bool
        var headers: HTTPHeaders
        var description: String { "\(status) \(manifestGET ? "GET" : "free") \(headers.map { "\($0.name): \($0.value)" })" }
    }

    static let answers = Generator { rng -> [Answer] in
        (0..<HostileInput.int(&rng, 1...4)).map { _ in
            var headers = HTTPHeaders()
            let number = { (rng: inout HostileInput.RNG) in HostileInput.pick(["0", "1", "100", "9223372036854775807", "99999999999999999999"], &rng) }
            if HostileInput.int(&rng, 0...1) == 0 { headers.add(name: "Retry-After", value: Self.decimalOrHostile(&rng)) }
            if HostileInput.int(&rng, 0...1) == 0 { headers.add(name: "ratelimit-limit", value: "\(number(&rng));w=\(Self.decimalOrHostile(&rng))") }
            if HostileInput.int(&rng, 0...1) == 0 { headers.add(name: "x-ratelimit-remaining", value: "\(number(&rng));w=\(Self.decimalOrHostile(&rng))") }
            return Answer(status: HostileInput.pick([200, 429, 429, 404], &rng), manifestGET: HostileInput.int(&rng, 0...1) == 0, headers: headers)
        }
    }

    @Test func whateverAnUpstreamAnnouncesBlocksAtMostADay() async throws {
        let dir = try TemporaryDirectory("properties-quota")
        defer { dir.cleanUp() }
        let store = try SQLiteMetadataStore(path: dir.path + "/m.sqlite")
        let config = try ConfigLoader(environment: [:]).load(yaml: """
            registries:
              evil.test:
                upstreams:
                  - name: hostile
                    url: http://127.0.0.1:5000
                    budget: {pulls: 5, window: 1h}
            """)
        let key = BudgetKey(upstream: config.registries[0].upstreams[0])
        await propertyCheck(count: HostileInput.scaled(300), input: Self.answers) { answers in
            let book = LocalBudgetLedger(limits: BudgetKey.limits(config), journal: store, logger: Self.logger)
            for answer in answers {
                let parsed = BudgetAnswer(status: answer.status, headers: answer.headers, now: Self.now)
                await book.observe(key, answer: parsed, manifestGET: answer.manifestGET, now: Self.now)
            }
            let upstream = Upstream(registry: "evil.test", config: config.registries[0].upstreams[0])
            var attempts = UpstreamAttempts()
            for decision in [await book.reserve(key, now: Self.now), await book.admitFree(key, now: Self.now)] {
                if case .refused(let until) = decision {
                    if let until { #expect(until <= Self.now.addingTimeInterval(RetryAfter.maximum), "\(answers)") }
                    attempts.record(upstream, .budget(until))
                }
            }
            let status = try #require(await book.status(key, now: Self.now))
            #expect((status.windowSeconds ?? 0) <= RetryAfter.maximum, "\(answers)")
            #expect((status.limit ?? 0) <= RateLimitHeaders.maxCount)
            if let blocked = status.blockedUntil { #expect(blocked <= Self.now.addingTimeInterval(RetryAfter.maximum), "\(answers)") }
            let error = attempts.clientError(notFound: RegistryError(.manifestUnknown, "unknown"))
            if let retryAfter = error.headers.first(where: { $0.0 == "Retry-After" })?.1 {
                #expect(Int(retryAfter).map { (1...86_400).contains($0) } == true, "\(retryAfter) after \(answers)")
            }
        }
    }

    // MARK: Content-Length and Content-Range

    static let lengthExtra = ["bytes ", "bytes", "-", "/", "*", " ", "0", "9223372036854775806", "9223372036854775807", "9223372036854775808"]

    @Test func anyLengthOrRangeFitsAnInt() async {
        let upstream = try! TokenCacheTests.upstream(registry: "docker.io", url: "https://r.example")
        let input = Generator { rng in (Self.decimalOrHostile(&rng), HostileInput.string(&rng, extra: Self.lengthExtra, maxParts: 10)) }
        await propertyCheck(count: HostileInput.scaled(3000), input: input) { (length: String, range: String) in
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: length)
            headers.add(name: "Content-Range", value: range)
            let response = UpstreamResponse(upstream: upstream, status: 206, headers: headers, body: UpstreamClient.emptyBody())
            if let n = response.contentLength {
                #expect(n <= UInt64(Int.max))
                #expect(UInt64(length.trimmingCharacters(in: CharacterSet(charactersIn: " \t"))) == n, "\(length.debugDescription)")
            }
            if let r = response.contentRange {
                #expect(r.first <= r.last && r.last < UInt64(Int.max), "\(range)")
                if let complete = r.complete { #expect(r.last < complete && complete <= UInt64(Int.max), "\(range)") }
                #expect(Int(r.last - r.first) >= 0)  // a count that fits an Int
            }
        }
    }

    @Test func generatedRangesRoundTrip() async {
        let input = Generator { rng -> (UInt64, UInt64, UInt64?) in
            let first = UInt64.random(in: 0...UInt64(Int.max - 2), using: &rng)
            let last = UInt64.random(in: first...UInt64(Int.max - 1), using: &rng)
            let complete: UInt64? = HostileInput.int(&rng, 0...3) == 0 ? nil : UInt64.random(in: (last + 1)...UInt64(Int.max), using: &rng)
            return (first, last, complete)
        }
        await propertyCheck(count: HostileInput.scaled(2000), input: input) { first, last, complete in
            let header = "bytes \(first)-\(last)/\(complete.map(String.init) ?? "*")"
            #expect(ContentRange(header) == ContentRange(first: first, last: last, complete: complete), "\(header)")
            #expect(ContentRange(header) != nil)
        }
    }
}
