/// `registries.<key>.policy`: which repositories of a registry may be pulled at all.
///
/// A repository is allowed when it matches a pattern of ``allow`` (or ``allow`` is absent) and
/// none of ``deny``: deny wins.
public struct RepositoryPolicy: Sendable, Equatable {
    /// nil: every repository not denied.
    public var allow: [RepositoryGlob]?
    public var deny: [RepositoryGlob]

    public init(allow: [RepositoryGlob]? = nil, deny: [RepositoryGlob] = []) {
        self.allow = allow
        self.deny = deny
    }

    /// Why a repository is refused.
    public enum Denial: Sendable, Equatable {
        /// It matches this pattern of `deny`.
        case denied(RepositoryGlob)
        /// `allow` is set and it matches none of its patterns.
        case notAllowed
    }

    /// nil when `repository` may be pulled.
    public func denial(of repository: String) -> Denial? {
        if let rule = deny.first(where: { $0.matches(repository) }) { return .denied(rule) }
        if let allow, !allow.contains(where: { $0.matches(repository) }) { return .notAllowed }
        return nil
    }

    /// What a client reads (in `docker pull`'s daemon log, kubelet events, skopeo's error):
    /// the repository and the rule, by its key path.
    public func message(for denial: Denial, registry: String, repository: String) -> String {
        switch denial {
        case .denied(let rule):
            return "repository \(registry)/\(repository) is denied by this gateway's policy: it matches '\(rule)' in registries.\(registry).policy.deny"
        case .notAllowed:
            return "repository \(registry)/\(repository) is not allowed by this gateway's policy: it matches none of registries.\(registry).policy.allow (\(Self.list(allow ?? [])))"
        }
    }

    /// The rule as the request log and the status page name it.
    public func rule(for denial: Denial, registry: String) -> String {
        switch denial {
        case .denied(let rule): "registries.\(registry).policy.deny '\(rule)'"
        case .notAllowed: "registries.\(registry).policy.allow (no match)"
        }
    }

    /// `library/*, bitnami/*` (the first eight, then how many more).
    static func list(_ patterns: [RepositoryGlob]) -> String {
        let shown = patterns.prefix(8).map(\.pattern).joined(separator: ", ")
        return patterns.count > 8 ? "\(shown) and \(patterns.count - 8) more" : shown
    }

    /// One line for `mirrorgate check` and the start-up log.
    public var summary: String {
        var parts: [String] = []
        parts.append(allow.map { "allow \($0.map(\.pattern).joined(separator: ", "))" } ?? "allow every repository")
        if !deny.isEmpty { parts.append("deny \(deny.map(\.pattern).joined(separator: ", ")) (deny wins)") }
        return parts.joined(separator: "; ")
    }
}
