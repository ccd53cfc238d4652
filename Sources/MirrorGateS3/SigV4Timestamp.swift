import Foundation

/// The instant a request is signed at, in the two forms SigV4 uses: `20130524T000000Z`
/// (`x-amz-date`, `X-Amz-Date`) and `20130524` (the credential scope's day).
public struct SigV4Timestamp: Sendable, Hashable, CustomStringConvertible {
    /// Whole seconds since the Unix epoch (SigV4 has no sub-second precision).
    public let unixSeconds: Int64
    /// `yyyyMMdd'T'HHmmss'Z'` in UTC.
    public let amzDate: String
    /// `yyyyMMdd` in UTC.
    public var day: Substring { amzDate.prefix(8) }

    /// The timestamp of `date`, truncated to the second.
    public init(_ date: Date) {
        self.init(unixSeconds: Int64(date.timeIntervalSince1970.rounded(.down)))
    }

    /// The timestamp `unixSeconds` after the epoch.
    public init(unixSeconds: Int64) {
        self.unixSeconds = unixSeconds
        let f = UTCCalendar.fields(unixSeconds: unixSeconds)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let year = String(f.year)
        let paddedYear = String(repeating: "0", count: max(0, 4 - year.count)) + year
        amzDate = paddedYear + two(f.month) + two(f.day) + "T" + two(f.hour) + two(f.minute) + two(f.second) + "Z"
    }

    /// Parses `yyyyMMdd'T'HHmmss'Z'`; `nil` when `amzDate` is not in that form.
    public init?(amzDate: String) {
        let b = Array(amzDate.utf8)
        guard b.count == 16, b[8] == UInt8(ascii: "T"), b[15] == UInt8(ascii: "Z") else { return nil }
        let iso = String(decoding: b[0..<4], as: UTF8.self) + "-" + String(decoding: b[4..<6], as: UTF8.self) + "-"
            + String(decoding: b[6..<8], as: UTF8.self) + "T" + String(decoding: b[9..<11], as: UTF8.self) + ":"
            + String(decoding: b[11..<13], as: UTF8.self) + ":" + String(decoding: b[13..<15], as: UTF8.self) + "Z"
        guard let seconds = UTCCalendar.parseISO8601(iso) else { return nil }
        self.init(unixSeconds: Int64(seconds))
    }

    public var description: String { amzDate }
}
