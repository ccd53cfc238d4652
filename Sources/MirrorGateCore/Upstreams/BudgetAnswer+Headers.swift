import Foundation
import MirrorGateStorage
import MirrorGateUpstream
import NIOHTTP1

extension BudgetAnswer {
    /// What an upstream's answer says about its budget, from its status and headers; every
    /// value clamped on the way in (a hostile upstream cannot push a block past a day).
    init(status: Int, headers: HTTPHeaders, now: Date) {
        // RateLimitHeaders and RetryAfter bound what they parse (counts, a window of at most
        // a day, a Retry-After at most a day ahead).
        let announced = RateLimitHeaders(headers: headers)
        self.init(
            status: status,
            limit: announced?.limit,
            remaining: announced?.remaining,
            window: announced?.window.map(\.seconds),
            retryAfter: headers.first(name: "retry-after").flatMap { RetryAfter.parse($0, now: now) })
    }
}
