import NIOHTTP1
import UpstreamParsers

/// `ratelimit-limit` and `ratelimit-remaining` (split at the first newline): numbers are not
/// negative, a window is positive, and reading them from headers gives the same answer.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRateLimit(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let s = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let parts = s.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
    let limit = String(parts[0])
    let remaining = parts.count > 1 ? String(parts[1]) : nil
    let parsed = RateLimitHeaders(limitHeader: limit, remainingHeader: remaining)
    precondition((parsed.limit ?? 0) >= 0 && (parsed.remaining ?? 0) >= 0)
    if let window = parsed.window { precondition(window > .zero) }
    var headers = HTTPHeaders()
    headers.add(name: "ratelimit-limit", value: limit)
    if let remaining { headers.add(name: "x-ratelimit-remaining", value: remaining) }
    if let fromHeaders = RateLimitHeaders(headers: headers) {
        precondition(fromHeaders == parsed)
    } else {
        precondition(parsed.limit == nil && parsed.remaining == nil)
    }
    return 0
}
