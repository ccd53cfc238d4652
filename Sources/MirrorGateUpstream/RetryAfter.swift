import Foundation

/// `Retry-After` (RFC 9110 §10.2.3), as an upstream sends it with a 429: delay-seconds or an
/// HTTP-date, read so that no value can make the gateway wait (or compute) without bound.
///
/// An upstream is not trusted with the length of a block: `Retry-After: 9223372036854775807`
/// once reached a Double-to-Int conversion and crashed the gateway, and the far-future date
/// it produced was persisted, so the next start crashed again. Every delay is therefore
/// clamped to ``maximum`` when it is parsed, and converted back to seconds with saturation.
///
/// Hand-written: two grammars and a clamp, no library needed.
public enum RetryAfter {
    /// The longest an upstream can block requests, through `Retry-After` or the `w=` of a
    /// `ratelimit-*` header (``RateLimitHeaders/maxWindow``): one day. Docker Hub's window is
    /// 6 hours; an upstream that means longer is asked again after a day.
    public static let maximum: TimeInterval = 86_400

    /// When to retry: `now` plus the delay-seconds (digits only, however many; saturating at
    /// ``maximum``), or the HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms
    /// recipients must accept) clamped to `now ... now + maximum`. `nil` for anything else.
    public static func parse(_ value: String, now: Date) -> Date? {
        let trimmed = Substring(value).trimmingOWS()
        guard !trimmed.isEmpty else { return nil }
        if trimmed.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            let cap = Int(maximum)
            var seconds = 0
            for digit in trimmed.utf8 {
                seconds = min(seconds * 10 + Int(digit - 0x30), cap)
            }
            return now.addingTimeInterval(TimeInterval(seconds))
        }
        guard let date = httpDate(String(trimmed), now: now) else { return nil }
        return min(max(date, now), now.addingTimeInterval(maximum))
    }

    /// Whole seconds from `now` until `date`, for a `Retry-After` header the gateway sends:
    /// from 1 to ``maximum``, whatever `date` is (also one an older version persisted far in
    /// the future).
    public static func delaySeconds(until date: Date, now: Date = Date()) -> Int {
        let interval = date.timeIntervalSince(now)
        if interval.isNaN || interval >= maximum { return Int(maximum) }
        if interval <= 1 { return 1 }
        return Int(interval.rounded(.up))
    }

    /// `date` moved into `now - maximum ... now + maximum`: how far a date learned from an
    /// upstream (or persisted from one) may lie from now.
    public static func clamp(_ date: Date, now: Date) -> Date {
        let interval = date.timeIntervalSince(now)
        guard interval.isFinite else { return interval > 0 ? now.addingTimeInterval(maximum) : now.addingTimeInterval(-maximum) }
        return now.addingTimeInterval(min(max(interval, -maximum), maximum))
    }

    /// The three HTTP-date forms of RFC 9110 §5.6.7 (always GMT), parsed by hand:
    ///
    ///     Sun, 06 Nov 1994 08:49:37 GMT    IMF-fixdate
    ///     Sunday, 06-Nov-94 08:49:37 GMT   RFC 850 (a two-digit year more than 50 years
    ///                                      ahead of `now` is in the past century)
    ///     Sun Nov  6 08:49:37 1994         asctime
    ///
    /// Not with `DateFormatter`: Foundation's traps ("Incorrect range CFRange") on some
    /// non-ASCII input, which an upstream may send in a header.
    static func httpDate(_ s: String, now: Date) -> Date? {
        let b = Array(s.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= b.count, !range.isEmpty else { return nil }
            var n = 0
            for i in range {
                guard b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                n = n * 10 + Int(b[i] - 0x30)
            }
            return n
        }
        func text(_ range: Range<Int>) -> String? {
            range.upperBound <= b.count ? String(decoding: b[range], as: UTF8.self) : nil
        }
        func month(at i: Int) -> Int? { text(i..<(i + 3)).flatMap { months.firstIndex(of: $0) }.map { $0 + 1 } }
        /// `HH:MM:SS` at `i`.
        func time(at i: Int) -> (Int, Int, Int)? {
            guard i + 8 <= b.count, b[i + 2] == 0x3A, b[i + 5] == 0x3A,
                  let h = number(i..<(i + 2)), let m = number((i + 3)..<(i + 5)), let sec = number((i + 6)..<(i + 8))
            else { return nil }
            return (h, m, sec)
        }
        func spaces(_ positions: Int...) -> Bool { positions.allSatisfy { $0 < b.count && b[$0] == 0x20 } }

        // Sun, 06 Nov 1994 08:49:37 GMT
        if b.count == 29, text(0..<3).map(days.contains) == true, text(3..<5) == ", ", spaces(7, 11, 16), text(25..<29) == " GMT",
           let d = number(5..<7), let m = month(at: 8), let y = number(12..<16), let t = time(at: 17) {
            return civil(y, m, d, t)
        }
        // Sunday, 06-Nov-94 08:49:37 GMT
        if let comma = b.firstIndex(of: 0x2C), text(0..<comma).map(longDays.contains) == true {
            let i = comma + 1
            guard b.count == i + 23, spaces(i, i + 10), b[i + 3] == 0x2D, b[i + 7] == 0x2D, text((i + 19)..<(i + 23)) == " GMT",
                  let d = number((i + 1)..<(i + 3)), let m = month(at: i + 4), let yy = number((i + 8)..<(i + 10)), let t = time(at: i + 11)
            else { return nil }
            let thisYear = 1970 + Int((now.timeIntervalSince1970 / 31_556_952).rounded(.down))
            var year = thisYear / 100 * 100 + yy
            if year > thisYear + 50 { year -= 100 }
            return civil(year, m, d, t)
        }
        // Sun Nov  6 08:49:37 1994
        if b.count == 24, text(0..<3).map(days.contains) == true, spaces(3, 7, 10, 19),
           let m = month(at: 4), let d = number(b[8] == 0x20 ? 9..<10 : 8..<10), let t = time(at: 11), let y = number(20..<24) {
            return civil(y, m, d, t)
        }
        return nil
    }

    static let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    static let longDays = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// The instant of a GMT calendar date and time; `nil` for a day or time that does not
    /// exist (a leap second, 60, is read as 59).
    static func civil(_ year: Int, _ month: Int, _ day: Int, _ time: (Int, Int, Int)) -> Date? {
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...12).contains(month), (1...lengths[month - 1]).contains(day),
              (0...23).contains(time.0), (0...59).contains(time.1), (0...60).contains(time.2)
        else { return nil }
        // Days from 1970-01-01 (H. Hinnant's days_from_civil), for years 0...9999.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let daysSinceEpoch = era * 146_097 + doe - 719_468
        let seconds = daysSinceEpoch * 86_400 + time.0 * 3600 + time.1 * 60 + min(time.2, 59)
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }
}

extension Substring {
    /// Without HTTP's optional whitespace (spaces and tabs) around it.
    func trimmingOWS() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }
}
