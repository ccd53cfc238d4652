import Foundation
import MirrorGateStorage
import MirrorGateUpstream
import NIOHTTP1

extension BudgetAnswer {
    /// What an upstream's answer says about its budget, from its status and headers; every
    /// value clamped on the way in (a hostile upstream cannot push a block past a day).
    init(status: Int, headers: HTTPHeaders, now: Date) {
        let announced = RateLimitHeaders(headers: headers)
        let horizon = BudgetRecord.maxHorizon
        self.init(
            status: status,
            limit: announced?.limit,
            remaining: announced?.remaining,
            window: announced?.window.map { min($0.seconds, horizon) },
            retryAfter: headers.first(name: "retry-after").flatMap { RetryAfterValue.parse($0, now: now) })
    }
}

/// `Retry-After` as delay-seconds or an HTTP date, clamped to ``BudgetRecord/maxHorizon``.
enum RetryAfterValue {
    static func parse(_ value: String, now: Date) -> Date? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        let horizon = BudgetRecord.maxHorizon
        if !trimmed.isEmpty, trimmed.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            // Digits only; any length (a number past Int.max is simply "very long").
            let seconds = trimmed.count > 12 ? horizon : min(Double(trimmed) ?? horizon, horizon)
            return now.addingTimeInterval(seconds)
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: trimmed) else { return nil }
        return min(date, now.addingTimeInterval(horizon))
    }
}
