import Foundation
import MirrorGateUpstream
import RegistryModel

/// What each upstream answered during one request, for the log line, the status page's
/// failover list and the error a client gets when none could serve it.
struct UpstreamAttempts: Sendable, CustomStringConvertible {
    /// Why an upstream was passed over without being asked.
    enum Skip: Sendable, Equatable, CustomStringConvertible {
        /// Its circuit is open (asked anyway only when every circuit is open).
        case circuitOpen
        /// The caller excluded it for this request (it sent a bad copy of this object).
        case excluded(String)

        var description: String {
            switch self {
            case .circuitOpen: "circuit open"
            case .excluded(let why): why
            }
        }
    }

    /// Why an upstream that was asked did not serve.
    struct Failure: Sendable, Equatable, CustomStringConvertible {
        enum Kind: Sendable, Equatable {
            case connection, timeout, redirect, authentication, badResponse
            /// Answered with an unusable status.
            case status
            /// Sent content that does not hash to the digest asked for.
            case digestMismatch
            /// An answer larger than the gateway accepts for it.
            case tooLarge
        }

        var kind: Kind
        var message: String
        var status: Int?

        init(_ kind: Kind, _ message: String, status: Int? = nil) {
            self.kind = kind
            self.message = message
            self.status = status
        }

        /// `answered 500`.
        static func status(_ status: Int) -> Failure { Failure(.status, "answered \(status)", status: status) }

        /// A transport error of the upstream client.
        init(_ error: UpstreamError) {
            switch error {
            case .connection: self.init(.connection, error.description)
            case .timeout: self.init(.timeout, error.description)
            case .redirect: self.init(.redirect, error.description)
            case .authentication: self.init(.authentication, error.description)
            case .protocolViolation: self.init(.badResponse, error.description)
            }
        }

        var isTimeout: Bool { kind == .timeout }
        var description: String { message }

        /// The metric label for it.
        var reason: UpstreamFailureReason {
            switch kind {
            case .connection: .connection
            case .timeout: .timeout
            case .redirect: .redirect
            case .authentication: .authentication
            case .badResponse, .tooLarge: .badResponse
            case .status: status == 429 ? .rateLimited : .serverError
            case .digestMismatch: .digestMismatch
            }
        }
    }

    enum Outcome: Sendable, Equatable {
        case notFound(Int)
        case failed(Failure)
        case skipped(Skip)
        /// Not asked: its pull budget is spent until the date (if known).
        case budget(Date?)
    }

    private(set) var entries: [(upstream: String, outcome: Outcome)] = []

    init() {}

    mutating func record(_ upstream: Upstream, _ outcome: Outcome) {
        entries.append((upstream.name, outcome))
    }

    mutating func notFound(_ upstream: Upstream, status: Int) { record(upstream, .notFound(status)) }
    mutating func failed(_ upstream: Upstream, _ failure: Failure) { record(upstream, .failed(failure)) }
    mutating func skipped(_ upstream: Upstream, _ skip: Skip) { record(upstream, .skipped(skip)) }

    mutating func append(_ entry: (upstream: String, outcome: Outcome)) {
        entries.append(entry)
    }

    /// Drops the "skipped" entry of an upstream that is asked after all (every circuit was open).
    mutating func unskip(_ upstream: Upstream) {
        if let index = entries.lastIndex(where: { $0.upstream == upstream.name && $0.outcome == .skipped(.circuitOpen) }) {
            entries.remove(at: index)
        }
    }

    var isEmpty: Bool { entries.isEmpty }

    var description: String {
        entries.map { entry in
            switch entry.outcome {
            case .notFound(let status): "\(entry.upstream): not found (\(status))"
            case .failed(let failure): "\(entry.upstream): \(failure.message)"
            case .skipped(let skip): "\(entry.upstream): skipped (\(skip))"
            case .budget(let until): "\(entry.upstream): skipped (pull budget spent\(until.map { " until \(Self.timestamp($0))" } ?? ""))"
            }
        }.joined(separator: "; ")
    }

    /// The error for a client when no upstream served the request.
    /// - Parameter notFound: the error when every upstream said "not found". Its code (the
    ///   object asked for: manifest, blob or repository) is also the code of outages, which
    ///   the spec has none for: they keep their status (502, 503, 504) and say what happened.
    func clientError(notFound: RegistryError, now: Date = Date()) -> RegistryError {
        let code = notFound.code == .unsupported ? RegistryError.Code.nameUnknown : notFound.code
        if entries.isEmpty {
            return RegistryError(code, status: 503, "no upstream is available for this registry")
        }
        let budgetResets = entries.compactMap { entry -> Date?? in
            if case .budget(let until) = entry.outcome { return .some(until) }
            return nil
        }
        if !budgetResets.isEmpty {
            // Content may exist upstream but no budget is left to fetch it: 429, never a 5xx.
            let earliest = budgetResets.compactMap { $0 }.min()
            let seconds = earliest.map { RetryAfter.delaySeconds(until: $0, now: now) } ?? 60
            return RegistryError(
                .tooManyRequests, "every upstream that could serve this has spent its pull budget: \(description)",
                headers: [("Retry-After", String(seconds))])
        }
        let notFoundStatuses = entries.compactMap { entry -> Int? in
            if case .notFound(let status) = entry.outcome { return status }
            return nil
        }
        if notFoundStatuses.count == entries.count {
            // Registries answer 401/403 for repositories that do not exist (Docker Hub does):
            // that is "name unknown", never a server error.
            var e = notFoundStatuses.allSatisfy({ $0 == 404 })
                ? notFound
                : RegistryError(.nameUnknown, "repository name not known to any upstream (or access denied)")
            e.detail = description
            return e
        }
        if entries.allSatisfy({ if case .skipped = $0.outcome { return true } else { return false } }) {
            if entries.contains(where: { if case .skipped(.excluded) = $0.outcome { return true } else { return false } }) {
                // The only copies on offer failed verification: an upstream fault, not an outage.
                return RegistryError(code, status: 502, "no upstream has a good copy: \(description)")
            }
            return RegistryError(code, status: 503, "every upstream is unavailable: \(description)")
        }
        let failures = entries.compactMap { entry -> Failure? in
            if case .failed(let failure) = entry.outcome { return failure }
            return nil
        }
        if failures.isEmpty {
            // Only not-found answers and skipped upstreams: one that may hold it was not asked.
            return RegistryError(code, status: 503, "no available upstream has it: \(description)")
        }
        if failures.allSatisfy(\.isTimeout) {
            return RegistryError(code, status: 504, "no upstream answered in time: \(description)")
        }
        if failures.allSatisfy({ $0.status == 429 }) {
            return RegistryError(.tooManyRequests, "every upstream is rate limited: \(description)")
        }
        return RegistryError(code, status: 502, "no upstream could serve the request: \(description)")
    }
}

extension UpstreamAttempts {
    static func timestamp(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}

extension String {
    /// nil for the empty string.
    var nonEmpty: String? { isEmpty ? nil : self }
}
