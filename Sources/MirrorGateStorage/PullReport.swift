import Foundation

/// Who pulled what and what it cost, over a window: what `mirrorgate report`,
/// `/_mirrorgate/report.json` and the status page show.
///
/// Encoded (``encoder``) as `{"by": …, "since": …, "generated_at": …, "rows": [...]}`, each row
/// an object holding its key under the grouping's name (`repository` as `registry/name`,
/// `client`, or `upstream`) next to `pulls`, `digests`, `spent`, `saved` and `last_pull`.
public struct PullReport: Sendable, Equatable, Codable {
    /// What rows are keyed by.
    public enum Grouping: String, Sendable, Codable, CaseIterable {
        /// `registry/name`.
        case repository
        /// The inbound user, or the source address, with the client kind: `alice (docker)`.
        case client
        /// What answered the client: an upstream's name, or `cache`.
        case upstream
    }

    public struct Row: Sendable, Equatable {
        public var key: String
        /// Client manifest GETs answered with a manifest (a HEAD is a check, not a pull).
        public var pulls: Int
        /// Distinct manifest digests those pulls received.
        public var digests: Int
        /// Pulls spent on each upstream's quota (upstream manifest GETs), by upstream name.
        public var spent: [String: Int]
        /// Pulls that spent no quota: served from the cache, or by an upstream that meters none.
        public var saved: Int
        public var lastPull: Date?

        public init(key: String, pulls: Int, digests: Int, spent: [String: Int], saved: Int, lastPull: Date?) {
            self.key = key
            self.pulls = pulls
            self.digests = digests
            self.spent = spent
            self.saved = saved
            self.lastPull = lastPull
        }

        /// Every upstream's spends together.
        public var spentTotal: Int { spent.values.reduce(0, +) }
    }

    public var by: Grouping
    public var since: Date
    public var generatedAt: Date
    /// Most pulls first.
    public var rows: [Row]

    public init(by: Grouping, since: Date, generatedAt: Date, rows: [Row]) {
        self.by = by
        self.since = since
        self.generatedAt = generatedAt
        self.rows = rows
    }

    /// Sums `tallies` into rows by `by`. Rows with neither a pull nor a spend (only checks) are
    /// left out; the rest are ordered by pulls, then spends, then key.
    public init(tallies: [PullTally], by: Grouping, since: Date, generatedAt: Date) {
        struct Sum {
            var pulls = 0
            var digests: Set<String> = []
            var spent: [String: Int] = [:]
            var saved = 0
            var lastPull: Date?
        }
        var sums: [String: Sum] = [:]
        for tally in tallies {
            let key = Self.key(of: tally, by: by)
            var sum = sums[key] ?? Sum()
            sum.pulls += tally.pulls
            if tally.pulls > 0 { sum.digests.insert(tally.digest) }
            if let upstream = tally.spentOn, tally.spends > 0 {
                sum.spent[upstream, default: 0] += tally.spends
            } else {
                sum.saved += tally.pulls
            }
            if let last = tally.lastPull { sum.lastPull = max(sum.lastPull ?? last, last) }
            sums[key] = sum
        }
        let rows = sums.compactMap { key, sum -> Row? in
            guard sum.pulls > 0 || !sum.spent.isEmpty else { return nil }
            return Row(key: key, pulls: sum.pulls, digests: sum.digests.count, spent: sum.spent, saved: sum.saved, lastPull: sum.lastPull)
        }
        self.init(by: by, since: since, generatedAt: generatedAt, rows: rows.sorted {
            ($0.pulls, $0.spentTotal, $1.key) > ($1.pulls, $1.spentTotal, $0.key)
        })
    }

    /// The row key of `tally`.
    public static func key(of tally: PullTally, by: Grouping) -> String {
        switch by {
        case .repository: "\(tally.registry)/\(tally.repository)"
        case .client: "\(tally.client) (\(tally.clientKind.rawValue))"
        case .upstream: tally.servedBy
        }
    }

    // MARK: Coding

    private enum CodingKeys: String, CodingKey {
        case by, since, rows
        case generatedAt = "generated_at"
    }

    private struct RowKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
        static let pulls = RowKey("pulls"), digests = RowKey("digests"), spent = RowKey("spent"), saved = RowKey("saved"),
            lastPull = RowKey("last_pull")
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(by, forKey: .by)
        try container.encode(since, forKey: .since)
        try container.encode(generatedAt, forKey: .generatedAt)
        var list = container.nestedUnkeyedContainer(forKey: .rows)
        for row in rows {
            var object = list.nestedContainer(keyedBy: RowKey.self)
            try object.encode(row.key, forKey: RowKey(by.rawValue))
            try object.encode(row.pulls, forKey: .pulls)
            try object.encode(row.digests, forKey: .digests)
            try object.encode(row.spent, forKey: .spent)
            try object.encode(row.saved, forKey: .saved)
            // Present as null when there was no pull (only spending checks), not left out.
            if let last = row.lastPull { try object.encode(last, forKey: .lastPull) } else { try object.encodeNil(forKey: .lastPull) }
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        by = try container.decode(Grouping.self, forKey: .by)
        since = try container.decode(Date.self, forKey: .since)
        generatedAt = try container.decode(Date.self, forKey: .generatedAt)
        var list = try container.nestedUnkeyedContainer(forKey: .rows)
        var rows: [Row] = []
        while !list.isAtEnd {
            let object = try list.nestedContainer(keyedBy: RowKey.self)
            rows.append(Row(
                key: try object.decode(String.self, forKey: RowKey(by.rawValue)),
                pulls: try object.decode(Int.self, forKey: .pulls),
                digests: try object.decode(Int.self, forKey: .digests),
                spent: try object.decode([String: Int].self, forKey: .spent),
                saved: try object.decode(Int.self, forKey: .saved),
                lastPull: try object.decodeIfPresent(Date.self, forKey: .lastPull)))
        }
        self.rows = rows
    }

    /// ISO 8601 dates, sorted keys, and no key conversion (upstream names are dictionary keys
    /// and must come out as configured).
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
