import Foundation

/// Samples from a Prometheus text exposition (`name{label="v",...} value`), for tests.
public struct PrometheusText: Sendable {
    public struct Sample: Sendable {
        public var name: String
        public var labels: [String: String]
        public var value: Double
    }

    public let samples: [Sample]

    public init(_ text: String) {
        var samples: [Sample] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let head = line[..<space]
            var labels: [String: String] = [:]
            let name: Substring
            if let brace = head.firstIndex(of: "{"), head.hasSuffix("}") {
                name = head[..<brace]
                let body = head[head.index(after: brace)..<head.index(before: head.endIndex)]
                // Label values here never hold `",` sequences; split on them.
                for pair in body.components(separatedBy: "\",") where !pair.isEmpty {
                    guard let eq = pair.firstIndex(of: "=") else { continue }
                    var v = pair[pair.index(after: eq)...]
                    if v.hasPrefix("\"") { v = v.dropFirst() }
                    if v.hasSuffix("\"") { v = v.dropLast() }
                    labels[String(pair[..<eq])] = String(v)
                }
            } else {
                name = head
            }
            samples.append(Sample(name: String(name), labels: labels, value: value))
        }
        self.samples = samples
    }

    /// Sum of the samples named `name` whose labels include `matching`.
    public func sum(_ name: String, _ matching: [String: String] = [:]) -> Double {
        samples.filter { sample in sample.name == name && matching.allSatisfy { sample.labels[$0.key] == $0.value } }
            .reduce(0) { $0 + $1.value }
    }

    /// Every label value of every sample.
    public var labelValues: Set<String> { Set(samples.flatMap { $0.labels.values }) }
}
