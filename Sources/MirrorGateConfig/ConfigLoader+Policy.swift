/// `registries.<key>.policy` and the top-level `ledger` section.
extension ConfigLoader {
    /// `policy: {allow: [...], deny: [...]}`: repository patterns (``RepositoryGlob``), each
    /// checked as it is read so that an error names its key, such as
    /// `registries.docker.io.policy.allow[2]`.
    static func repositoryPolicy(_ node: ConfigNode, registry: String) throws(ConfigError) -> RepositoryPolicy {
        let p = try node.mapping(allowed: ["allow", "deny"])
        guard p["allow"] != nil || p["deny"] != nil else {
            throw node.invalid("a policy needs allow, deny or both; remove it to allow every repository")
        }
        var policy = RepositoryPolicy()
        if let allow = p["allow"] {
            let patterns = try globs(allow, registry: registry)
            guard !patterns.isEmpty else {
                throw allow.invalid("an empty allow list lets nothing through; list patterns (such as library/*), or remove allow to allow every repository")
            }
            policy.allow = patterns
        }
        if let deny = p["deny"] { policy.deny = try globs(deny, registry: registry) }
        return policy
    }

    private static func globs(_ node: ConfigNode, registry: String) throws(ConfigError) -> [RepositoryGlob] {
        var patterns: [RepositoryGlob] = []
        for item in try node.sequence() {
            let text = try item.string()
            let glob: RepositoryGlob
            do throws(ValueParseError) {
                glob = try RepositoryGlob(parsing: text)
            } catch {
                throw item.invalid(error.message)
            }
            // Docker Hub names always have a namespace: `ubuntu` is `library/ubuntu`, so a
            // one-component pattern there would silently match nothing.
            if registry == "docker.io", let most = glob.maxComponents, most < 2 {
                throw item.invalid("'\(text)' can never match on Docker Hub, whose repositories all have a namespace: official images are library/<name> (write library/\(text))")
            }
            guard !patterns.contains(glob) else { throw item.invalid("'\(text)' is listed twice") }
            patterns.append(glob)
        }
        return patterns
    }

    func ledger(_ node: ConfigNode?) throws(ConfigError) -> LedgerConfig {
        var ledger = LedgerConfig()
        guard let node else { return ledger }
        let l = try node.mapping(allowed: ["retention"])
        if let r = l["retention"] {
            ledger.retention = try r.duration()
            guard ledger.retention >= .seconds(1), ledger.retention <= .seconds(3650 * 86_400) else {
                throw r.invalid("must be from 1s to 3650d")
            }
        }
        return ledger
    }
}
