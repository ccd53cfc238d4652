import CoreMetrics
import Foundation
import MirrorGateConfig
import RegistryModel
import Synchronization

/// Who may pull what: the users of each registry (``RegistryAccess``) and its repository
/// policy (`registries.<key>.policy`), swapped as a whole when SIGHUP re-reads the
/// configuration, so a request sees either the old rules or the new ones.
///
/// Checked as soon as a request is routed to its registry and repository, before the cache
/// or any upstream: a denied request learns nothing, not even what is cached.
public final class AccessRules: Sendable {
    struct Rules: Sendable {
        var access: RegistryAccess
        var policies: [String: RepositoryPolicy]
    }

    private let current: Mutex<Rules>
    /// Policy denials since start, for the status page and `mirrorgate_policy_denials_total`.
    public let denials: PolicyDenials

    public init(config: GatewayConfig) {
        current = Mutex(Self.rules(config))
        denials = PolicyDenials(registries: config.registries.filter { $0.policy != nil }.map(\.key))
    }

    static func rules(_ config: GatewayConfig) -> Rules {
        var policies: [String: RepositoryPolicy] = [:]
        for registry in config.registries {
            if let policy = registry.policy { policies[registry.key] = policy }
        }
        return Rules(access: RegistryAccess(config: config), policies: policies)
    }

    /// Takes the users and policies of `config` (a reloaded configuration).
    public func update(_ config: GatewayConfig) {
        current.withLock { $0 = Self.rules(config) }
    }

    /// The policy of each registry that has one.
    public var policies: [String: RepositoryPolicy] { current.withLock { $0.policies } }

    /// Why a request is refused: the client's error and the rule for the request log.
    public struct Refusal: Error, Sendable {
        public let error: RegistryError
        /// `registries.docker.io.policy.deny 'library/*-nightly'`, `registries.private.example.users`.
        public let rule: String
    }

    /// A 403 `DENIED` when `user` may not pull through `registry` or the registry's policy
    /// refuses `repository`, else nil. A policy denial is counted and remembered with `client`.
    public func refusal(user: String?, client: @autoclosure () -> String, registry: String, repository: String) -> Refusal? {
        let rules = current.withLock { $0 }
        do throws(RegistryError) {
            try rules.access.check(user: user, registry: registry)
        } catch {
            return Refusal(error: error, rule: "registries.\(registry).users")
        }
        guard let policy = rules.policies[registry], let denial = policy.denial(of: repository) else { return nil }
        let rule = policy.rule(for: denial, registry: registry)
        denials.record(.init(at: Date(), registry: registry, repository: repository, rule: rule, client: client()))
        return Refusal(error: RegistryError(.denied, policy.message(for: denial, registry: registry, repository: repository)), rule: rule)
    }
}

/// Policy denials: counted per registry (`mirrorgate_policy_denials_total{registry}`, no
/// repository label) and the last ones kept for the status page.
public final class PolicyDenials: Sendable {
    public struct Denial: Sendable, Equatable, Codable {
        public var at: Date
        public var registry: String
        public var repository: String
        /// The rule by key path: `registries.docker.io.policy.deny 'library/*-nightly'`.
        public var rule: String
        /// The inbound user, or the client's address.
        public var client: String

        public init(at: Date, registry: String, repository: String, rule: String, client: String) {
            self.at = at
            self.registry = registry
            self.repository = repository
            self.rule = rule
            self.client = client
        }
    }

    struct State {
        var counts: [String: Int] = [:]
        var recent: [Denial] = []
    }

    /// How many denials are kept.
    public let keep: Int
    private let state = Mutex(State())

    /// `registries`: those with a policy, whose counters start at 0 so dashboards see them.
    public init(registries: [String], keep: Int = 20) {
        self.keep = keep
        for registry in registries { Self.counter(registry).increment(by: 0) }
    }

    func record(_ denial: Denial) {
        state.withLock { s in
            s.counts[denial.registry, default: 0] += 1
            s.recent.append(denial)
            if s.recent.count > keep { s.recent.removeFirst(s.recent.count - keep) }
        }
        Self.counter(denial.registry).increment()
    }

    static func counter(_ registry: String) -> Counter {
        Counter(label: "mirrorgate_policy_denials_total", dimensions: [("registry", registry)])
    }

    /// Denials since start, by registry.
    public var counts: [String: Int] { state.withLock { $0.counts } }

    /// The last denials, newest first.
    public var recent: [Denial] { state.withLock { Array($0.recent.reversed()) } }
}
