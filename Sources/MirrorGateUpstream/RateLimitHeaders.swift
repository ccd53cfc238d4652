import NIOHTTP1

/// Docker Hub's rate-limit headers, as sent on manifest GET and HEAD answers:
/// `ratelimit-limit: 100;w=21600` and `ratelimit-remaining: 20;w=21600` (also spelled
/// `x-ratelimit-*`). Absent headers mean "not limited".
///
/// Hand-written: the values are RFC 8941-like lists but registries send them loosely, and no
/// maintained Swift library parses this draft's form.
///
/// The numbers come from the network, so they are bounded as they are read: counts saturate
/// at ``maxCount`` and the window at ``maxWindow`` (a window of `Int.max` seconds once turned
/// into a date that crashed the gateway when it was converted back to seconds).
public struct RateLimitHeaders: Equatable, Sendable {
    /// Counts larger than this are read as this (Docker Hub sends hundreds): large enough to
    /// mean "unlimited", small enough that no sum or difference of counts can overflow.
    public static let maxCount = 1_000_000_000
    /// Windows longer than this are read as this: ``RetryAfter/maximum``, one day.
    public static let maxWindow = Duration.seconds(Int64(RetryAfter.maximum))

    /// At most ``maxCount``.
    public var limit: Int?
    /// At most ``maxCount``.
    public var remaining: Int?
    /// The window from `w=`, if given: more than zero, at most ``maxWindow``.
    public var window: Duration?

    public init(limit: Int? = nil, remaining: Int? = nil, window: Duration? = nil) {
        self.limit = limit
        self.remaining = remaining
        self.window = window
    }

    /// Reads the headers of a response; `nil` when it carries none.
    public init?(headers: HTTPHeaders) {
        func first(_ names: [String]) -> String? {
            for name in names { if let v = headers.first(name: name) { return v } }
            return nil
        }
        let limitValue = first(["ratelimit-limit", "x-ratelimit-limit"])
        let remainingValue = first(["ratelimit-remaining", "x-ratelimit-remaining"])
        guard limitValue != nil || remainingValue != nil else { return nil }
        self.init(limitHeader: limitValue, remainingHeader: remainingValue)
        if limit == nil, remaining == nil { return nil }
    }

    /// Parses the two header values (either may be nil).
    public init(limitHeader: String?, remainingHeader: String?) {
        let l = limitHeader.map(Self.parse)
        let r = remainingHeader.map(Self.parse)
        self.init(limit: l?.value, remaining: r?.value, window: l?.window ?? r?.window)
    }

    /// `100;w=21600` → (100, 21600 s). Tolerates spaces, other parameters and a list
    /// (`100, 100;w=21600`, where the first number is the current limit).
    static func parse(_ raw: String) -> (value: Int?, window: Duration?) {
        var value: Int?
        var window: Duration?
        for item in raw.split(separator: ",") {
            let parts = item.split(separator: ";").map(trimmed)
            if value == nil, let first = parts.first, let n = number(first) { value = n }
            for parameter in parts.dropFirst() {
                let kv = parameter.split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0].lowercased() == "w", let seconds = number(trimmed(kv[1])), seconds > 0, window == nil {
                    window = min(.seconds(seconds), maxWindow)
                }
            }
        }
        return (value, window)
    }

    /// Without the spaces and tabs (HTTP's `OWS`) around it.
    private static func trimmed(_ s: Substring) -> Substring {
        var s = s
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }

    /// A non-negative RFC 8941 integer: digits only (`Int(_:)` would also take `+5` and `-0`),
    /// however many, saturating at ``maxCount``.
    static func number(_ s: Substring) -> Int? {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        var n = 0
        for digit in s.utf8 { n = min(n * 10 + Int(digit - 0x30), maxCount) }
        return n
    }
}
