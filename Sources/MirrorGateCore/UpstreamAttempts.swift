import Foundation
import MirrorGateUpstream
import RegistryModel

/// What each upstream answered during one request, for the log line and for the error a
/// client gets when none could serve it.
public struct UpstreamAttempts: Sendable, CustomStringConvertible {
    public enum Outcome: Sendable {
        case notFound(Int)
        case failed(String, timeout: Bool, status: Int?)
        case skipped(String)
        /// Not asked: its pull budget is spent until the date (if known).
        case budget(Date?)
    }

    public private(set) var entries: [(upstream: String, outcome: Outcome)] = []

    public init() {}

    public mutating func notFound(_ upstream: Upstream, status: Int) {
        entries.append((upstream.name, .notFound(status)))
    }

    public mutating func failed(_ upstream: Upstream, _ reason: String, timeout: Bool = false, status: Int? = nil) {
        entries.append((upstream.name, .failed(reason, timeout: timeout, status: status)))
    }

    /// An upstream not tried (open circuit).
    public mutating func skipped(_ upstream: Upstream, _ reason: String) {
        entries.append((upstream.name, .skipped(reason)))
    }

    /// Records a request that did not produce an answer.
    public mutating func failed(_ upstream: Upstream, error: UpstreamError) {
        if case .rateLimited(let until) = error {
            entries.append((upstream.name, .budget(until)))
        } else {
            failed(upstream, error.description, timeout: error.isTimeout)
        }
    }

    /// Records an answer that is not the one the caller wanted and drains its body: 404, 401
    /// and 403 mean "not found" (registries answer 401 for repositories that do not exist),
    /// anything else is a failure.
    public mutating func record(unwanted response: UpstreamResponse) async {
        await response.discardBody()
        if [404, 401, 403].contains(response.status) {
            notFound(response.upstream, status: response.status)
        } else {
            failed(response.upstream, "answered \(response.status)", status: response.status)
        }
    }

    /// Records a request that failed with any error.
    public mutating func failed(_ upstream: Upstream, anyError error: any Error) {
        if let error = error as? UpstreamError {
            failed(upstream, error: error)
        } else {
            failed(upstream, "\(error)")
        }
    }

    public var isEmpty: Bool { entries.isEmpty }

    public var description: String {
        entries.map { entry in
            switch entry.outcome {
            case .notFound(let status): "\(entry.upstream): not found (\(status))"
            case .failed(let reason, _, _): "\(entry.upstream): \(reason)"
            case .skipped(let reason): "\(entry.upstream): skipped (\(reason))"
            case .budget(let until): "\(entry.upstream): skipped (pull budget spent\(until.map { " until \(Self.timestamp($0))" } ?? ""))"
            }
        }.joined(separator: "; ")
    }

    /// The error for a client when no upstream served the request.
    /// - Parameter notFound: the error when every upstream said "not found".
    public func clientError(notFound: RegistryError) -> RegistryError {
        if entries.isEmpty {
            return RegistryError(.unavailable, status: 503, "no upstream is available for this registry")
        }
        let budgetResets = entries.compactMap { entry -> Date?? in
            if case .budget(let until) = entry.outcome { return .some(until) }
            return nil
        }
        if !budgetResets.isEmpty {
            // Content may exist upstream but no budget is left to fetch it: 429, never a 5xx.
            let earliest = budgetResets.compactMap { $0 }.min()
            let seconds = earliest.map { RetryAfter.delaySeconds(until: $0) } ?? 60
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
            return RegistryError(.unavailable, status: 503, "every upstream is unavailable: \(description)")
        }
        let failures = entries.compactMap { entry -> (Bool, Int?)? in
            if case .failed(_, let timeout, let status) = entry.outcome { return (timeout, status) }
            return nil
        }
        if failures.isEmpty {
            // Only not-found answers and skipped upstreams: one that may hold it was not asked.
            return RegistryError(.unavailable, status: 503, "no available upstream has it: \(description)")
        }
        if failures.allSatisfy({ $0.0 }) {
            return RegistryError(.unavailable, status: 504, "no upstream answered in time: \(description)")
        }
        if failures.allSatisfy({ $0.1 == 429 }) {
            return RegistryError(.tooManyRequests, "every upstream is rate limited: \(description)")
        }
        return RegistryError(.unknown, status: 502, "no upstream could serve the request: \(description)")
    }
}

extension UpstreamAttempts {
    static func timestamp(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}
