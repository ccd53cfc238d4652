/// A repository-name pattern of `registries.<key>.policy`: `*` matches any run of characters
/// within one path component, `**` (only as a whole component) any number of components.
///
/// As in gitignore: `org/**/app` matches `org/app` and `org/a/b/app`, `**/nightly` matches
/// `nightly` at any depth, and a trailing `**` needs at least one component (`org/**` is
/// everything under `org/`, not `org` itself). Patterns are checked against the grammar of
/// repository names when they are parsed, so one that could never match is refused.
public struct RepositoryGlob: Sendable, Equatable, CustomStringConvertible {
    enum Component: Sendable, Equatable {
        /// `**`
        case anyComponents
        /// Literal text and `*` within one component, as written.
        case glob([UInt8])
    }

    /// The pattern as written.
    public let pattern: String
    let components: [Component]

    public var description: String { pattern }

    /// Parses and validates `pattern`.
    public init(parsing pattern: String) throws(ValueParseError) {
        guard !pattern.isEmpty else { throw ValueParseError(message: "a pattern must not be empty") }
        guard pattern.utf8.count <= 255 else { throw ValueParseError(message: "'\(pattern.prefix(40))…' is longer than a repository name can be (255 characters)") }
        guard !pattern.hasPrefix("/"), !pattern.hasSuffix("/") else {
            throw ValueParseError(message: "'\(pattern)' starts or ends with '/'; repository names do not")
        }
        var components: [Component] = []
        for part in pattern.split(separator: "/", omittingEmptySubsequences: false) {
            guard !part.isEmpty else { throw ValueParseError(message: "'\(pattern)' has an empty path component ('//')") }
            if part == "**" {
                components.append(.anyComponents)
                continue
            }
            if part.contains("**") {
                throw ValueParseError(message: "'\(pattern)': '**' must be a whole path component (as in library/** or **/app); '*' matches within one")
            }
            for character in part {
                if character.isUppercase {
                    throw ValueParseError(message: "'\(pattern)': repository names are lowercase, so '\(character)' can never match")
                }
                guard character == "*" || character.isASCII && (character.isLowercase || character.isNumber || "._-".contains(character)) else {
                    throw ValueParseError(message: "'\(pattern)': '\(character)' cannot appear in a repository name (lowercase letters, digits, '.', '_', '-', '/' and the wildcards '*' and '**')")
                }
            }
            components.append(.glob(Array(part.utf8)))
        }
        self.pattern = pattern
        self.components = components
    }

    /// The most components a name it matches can have (nil: no bound, it has a `**`).
    public var maxComponents: Int? {
        components.contains(.anyComponents) ? nil : components.count
    }

    /// Whether `repository` (a validated name such as `library/alpine`) matches.
    public func matches(_ repository: String) -> Bool {
        let name = repository.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        // matched[i][j]: pattern components i... match name components j... (filled backwards:
        // linear in pattern × name, whatever the number of `**`).
        let p = components.count
        let n = name.count
        var next = [Bool](repeating: false, count: n + 1)
        next[n] = true
        for i in stride(from: p - 1, through: 0, by: -1) {
            var current = [Bool](repeating: false, count: n + 1)
            for j in stride(from: n, through: 0, by: -1) {
                switch components[i] {
                case .anyComponents:
                    if i == p - 1 {
                        // A trailing `**` is everything below: one component or more.
                        current[j] = j < n
                    } else {
                        current[j] = next[j] || (j < n && current[j + 1])
                    }
                case .glob(let glob):
                    current[j] = j < n && next[j + 1] && Self.matches(glob, name[j])
                }
            }
            next = current
        }
        return next[0]
    }

    /// `*`-only wildcard matching within one component: the classic greedy scan that backs up
    /// to the last `*` (linear in practice, at worst glob × text).
    static func matches(_ glob: [UInt8], _ text: Substring.UTF8View) -> Bool {
        let text = Array(text)
        let star = UInt8(ascii: "*")
        var g = 0
        var t = 0
        var lastStar = -1
        var resume = 0
        while t < text.count {
            if g < glob.count, glob[g] == star {
                lastStar = g
                resume = t
                g += 1
            } else if g < glob.count, glob[g] == text[t] {
                g += 1
                t += 1
            } else if lastStar >= 0 {
                g = lastStar + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while g < glob.count, glob[g] == star { g += 1 }
        return g == glob.count
    }
}
