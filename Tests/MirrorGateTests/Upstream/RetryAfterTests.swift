import Foundation
import MirrorGateStorage
import Testing

@testable import MirrorGateUpstream

/// `Retry-After` is read and written bounded (security review, finding 2).
@Suite("RetryAfter")
struct RetryAfterTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func secondsAndTheThreeHTTPDateForms() {
        #expect(RetryAfter.parse("90", now: Self.now) == Self.now.addingTimeInterval(90))
        #expect(RetryAfter.parse(" 0\t", now: Self.now) == Self.now)
        let future = Self.now.addingTimeInterval(3600)  // Tue, 15 Jan 2027 09:00:00 GMT
        for form in ["Fri, 15 Jan 2027 09:00:00 GMT", "Friday, 15-Jan-27 09:00:00 GMT", "Fri Jan 15 09:00:00 2027"] {
            #expect(RetryAfter.parse(form, now: Self.now) == future, "\(form)")
        }
        #expect(RetryAfter.parse("Sun Nov  6 08:49:37 1994", now: Self.now) == Self.now)
    }

    @Test func httpDatesAreCheckedDayByDay() {
        let past = Date(timeIntervalSince1970: 0)  // so nothing is clamped
        #expect(RetryAfter.httpDate("Thu, 29 Feb 2024 23:59:59 GMT", now: past) == Date(timeIntervalSince1970: 1_709_251_199))
        #expect(RetryAfter.httpDate("Sun, 06 Nov 1994 08:49:37 GMT", now: past) == Date(timeIntervalSince1970: 784_111_777))
        #expect(RetryAfter.httpDate("Sunday, 06-Nov-94 08:49:37 GMT", now: Self.now) == Date(timeIntervalSince1970: 784_111_777))
        #expect(RetryAfter.httpDate("Sun Nov  6 08:49:37 1994", now: past) == Date(timeIntervalSince1970: 784_111_777))
        #expect(RetryAfter.httpDate("Thu Jan 01 00:00:00 1970", now: past) == past)
        // A two-digit year more than 50 years ahead is in the past century (RFC 9110 §5.6.7).
        #expect(RetryAfter.httpDate("Friday, 15-Jan-27 09:00:00 GMT", now: Self.now) == Self.now.addingTimeInterval(3600))
        #expect(RetryAfter.httpDate("Tuesday, 01-Jan-80 00:00:00 GMT", now: Self.now) == Date(timeIntervalSince1970: 315_532_800))
        #expect(RetryAfter.httpDate("Tuesday, 01-Jan-70 00:00:00 GMT", now: Self.now) == Date(timeIntervalSince1970: 3_155_760_000))
        for invalid in [
            "Fri, 29 Feb 2023 00:00:00 GMT", "Fri, 31 Apr 2027 00:00:00 GMT", "Fri, 00 Jan 2027 00:00:00 GMT", "Fri, 15 Jan 2027 24:00:00 GMT",
            "Fri, 15 Jan 2027 09:60:00 GMT", "Fri, 15 Foo 2027 09:00:00 GMT", "Xyz, 15 Jan 2027 09:00:00 GMT", "Fri, 15 Jan 2027 09:00:00 UTC",
            "Fri,  15 Jan 2027 09:00:00 GMT", "Fri, 15 Jan 2027 9:00:00 GMT", "Friday, 15-Jan-2027 09:00:00 GMT", "Fri Jan 15 09:00:00 27",
        ] {
            #expect(RetryAfter.httpDate(invalid, now: Self.now) == nil, "\(invalid)")
        }
    }

    /// Found by the property suite: `DateFormatter` (which parsed HTTP dates before) trapped
    /// with "Incorrect range CFRange" on non-ASCII input, which headers may carry (obs-text).
    @Test(arguments: [
        "Sú 06 Nov 1994 08:Sunday, 06-Nov-94 08:494Sun, 06 Nov9Sunday, :37 \u{FFFD}GMT", "Sú, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT\u{301}", "Sun\u{301}, 06 Nov 1994 08:49:37 GMT", "Ｓun, 06 Nov 1994 08:49:37 GMT",
    ])
    func nonASCIIDatesAreNoValue(_ value: String) {
        #expect(RetryAfter.parse(value, now: Self.now) == nil)
        #expect(UpstreamClient.parseTimestamp(value) == nil)
        #expect(UpstreamClient.parseTimestamp("2026-01-01T00:00:00Z\u{301}") == nil)
    }

    @Test(arguments: ["soon", "", " ", "-5", "+5", "5s", "1.5", "0x10", "Fri, 15 Jan 2027 09:00:00 CET"])
    func anythingElseIsNoValue(_ value: String) {
        #expect(RetryAfter.parse(value, now: Self.now) == nil)
    }

    /// The review's value, and more digits than any integer type holds, wait a day at most.
    @Test(arguments: ["9223372036854775807", "18446744073709551616", "86401", String(repeating: "9", count: 1000)])
    func hugeDelaysAreClampedToADay(_ value: String) {
        #expect(RetryAfter.parse(value, now: Self.now) == Self.now.addingTimeInterval(86_400))
    }

    @Test func datesOutsideTheNextDayAreClamped() {
        #expect(RetryAfter.parse("Fri, 31 Dec 9999 23:59:59 GMT", now: Self.now) == Self.now.addingTimeInterval(RetryAfter.maximum))
        #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: Self.now) == Self.now)
    }

    @Test func delaySecondsSaturate() {
        #expect(RetryAfter.delaySeconds(until: Self.now.addingTimeInterval(9.223372036854776e18), now: Self.now) == 86_400)
        #expect(RetryAfter.delaySeconds(until: .distantFuture, now: Self.now) == 86_400)
        #expect(RetryAfter.delaySeconds(until: Date(timeIntervalSince1970: .infinity), now: Self.now) == 86_400)
        #expect(RetryAfter.delaySeconds(until: Self.now.addingTimeInterval(0.2), now: Self.now) == 1)
        #expect(RetryAfter.delaySeconds(until: Self.now.addingTimeInterval(89.1), now: Self.now) == 90)
        #expect(RetryAfter.delaySeconds(until: .distantPast, now: Self.now) == 1)
    }

    @Test func clampKeepsDatesWithinADay() {
        #expect(RetryAfter.clamp(.distantFuture, now: Self.now) == Self.now.addingTimeInterval(86_400))
        #expect(RetryAfter.clamp(.distantPast, now: Self.now) == Self.now.addingTimeInterval(-86_400))
        #expect(RetryAfter.clamp(Date(timeIntervalSince1970: .nan), now: Self.now).timeIntervalSince1970.isFinite)
        #expect(RetryAfter.clamp(Self.now.addingTimeInterval(5), now: Self.now) == Self.now.addingTimeInterval(5))
    }

    /// MirrorGateStorage cannot import this module; its copies of the bounds must agree.
    @Test func storageUsesTheSameBounds() {
        #expect(BudgetRecord.maxHorizon == RetryAfter.maximum)
        #expect(BudgetRecord.maxHorizon == RateLimitHeaders.maxWindow / .seconds(1))
        #expect(BudgetRecord.maxCount == RateLimitHeaders.maxCount)
    }
}
