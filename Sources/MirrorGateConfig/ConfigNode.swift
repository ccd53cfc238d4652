import Yams

/// A YAML node with the key path that leads to it, so every error can name key and line.
///
/// Hand-written rather than `Codable`: `Decodable` loses the line numbers and cannot report
/// unknown keys, both of which the configuration errors must carry.
struct ConfigNode {
    let node: Node
    let path: String
    let environment: [String: String]

    var line: Int? { node.mark?.line }

    /// The key path as errors name it: "(top level)" for the root.
    var displayPath: String { path.isEmpty ? "(top level)" : path }

    func invalid(_ message: String) -> ConfigError {
        .invalid(key: displayPath, line: line, message: message)
    }

    /// Child path for a key.
    func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The mapping's entries in file order. Keys outside `allowed` are errors.
    func mapping(allowed: [String]) throws(ConfigError) -> OrderedEntries {
        guard case .mapping(let mapping) = node else {
            throw invalid("expected a mapping with keys \(allowed.joined(separator: ", ")), found \(kind)")
        }
        var entries = OrderedEntries(parent: self)
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                throw ConfigError.invalid(key: displayPath, line: keyNode.mark?.line, message: "keys must be plain strings")
            }
            let key = scalar.string
            // An empty key (`? ` or `"": x`) would make an empty key path: name the mapping instead.
            guard !key.isEmpty else {
                throw ConfigError.invalid(key: displayPath, line: keyNode.mark?.line, message: "empty key; allowed here: \(allowed.joined(separator: ", "))")
            }
            let child = ConfigNode(node: valueNode, path: childPath(key), environment: environment)
            guard allowed.contains(key) else {
                throw ConfigError.invalid(
                    key: child.path, line: keyNode.mark?.line,
                    message: "unknown key '\(key)'; allowed here: \(allowed.joined(separator: ", "))")
            }
            guard !entries.items.contains(where: { $0.0 == key }) else {
                throw ConfigError.invalid(key: child.path, line: keyNode.mark?.line, message: "duplicate key '\(key)'")
            }
            entries.items.append((key, child))
        }
        return entries
    }

    /// A mapping whose keys are free-form (registry hosts); values keep file order.
    func freeMapping() throws(ConfigError) -> [(key: String, line: Int?, value: ConfigNode)] {
        guard case .mapping(let mapping) = node else { throw invalid("expected a mapping, found \(kind)") }
        var out: [(key: String, line: Int?, value: ConfigNode)] = []
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                throw ConfigError.invalid(key: displayPath, line: keyNode.mark?.line, message: "keys must be plain strings")
            }
            let key = scalar.string
            guard !key.isEmpty else {
                throw ConfigError.invalid(key: displayPath, line: keyNode.mark?.line, message: "empty key")
            }
            guard !out.contains(where: { $0.key == key }) else {
                throw ConfigError.invalid(key: childPath(key), line: keyNode.mark?.line, message: "duplicate key '\(key)'")
            }
            out.append((key, keyNode.mark?.line, ConfigNode(node: valueNode, path: childPath(key), environment: environment)))
        }
        return out
    }

    func sequence() throws(ConfigError) -> [ConfigNode] {
        guard case .sequence(let seq) = node else { throw invalid("expected a list, found \(kind)") }
        return seq.enumerated().map { ConfigNode(node: $1, path: "\(path)[\($0)]", environment: environment) }
    }

    /// A scalar string with `${VAR}` expanded from the environment (`$$` is a literal `$`).
    func string() throws(ConfigError) -> String {
        guard case .scalar(let scalar) = node else { throw invalid("expected a string, found \(kind)") }
        return try expand(scalar.string)
    }

    func nonEmptyString() throws(ConfigError) -> String {
        let s = try string()
        guard !s.isEmpty else { throw invalid("must not be empty") }
        return s
    }

    func bool() throws(ConfigError) -> Bool {
        switch try string().lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let other: throw invalid("expected true or false, found '\(other)'")
        }
    }

    func int(min: Int, max: Int = Int.max) throws(ConfigError) -> Int {
        let s = try string()
        guard let value = Int(s) else { throw invalid("expected an integer, found '\(s)'") }
        guard value >= min, value <= max else {
            throw invalid(max == Int.max ? "must be at least \(min), found \(value)" : "must be between \(min) and \(max), found \(value)")
        }
        return value
    }

    func duration() throws(ConfigError) -> Duration {
        let s = try string()
        do throws(ValueParseError) {
            return try ConfigValues.parseDuration(s)
        } catch {
            throw invalid(error.message)
        }
    }

    func byteSize() throws(ConfigError) -> UInt64 {
        let s = try string()
        do throws(ValueParseError) {
            return try ConfigValues.parseByteSize(s)
        } catch {
            throw invalid(error.message)
        }
    }

    private var kind: String {
        switch node {
        case .scalar(let s): "the value '\(s.string.prefix(40))'"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    private func expand(_ raw: String) throws(ConfigError) -> String {
        guard raw.contains("$") else { return raw }
        var out = ""
        var i = raw.startIndex
        while i < raw.endIndex {
            let c = raw[i]
            let next = raw.index(after: i)
            if c == "$", next < raw.endIndex {
                if raw[next] == "$" {
                    out.append("$")
                    i = raw.index(after: next)
                    continue
                }
                if raw[next] == "{" {
                    guard let close = raw[next...].firstIndex(of: "}") else {
                        throw invalid("unterminated ${ in value")
                    }
                    let name = String(raw[raw.index(after: next)..<close])
                    guard !name.isEmpty, name.allSatisfy({ $0 == "_" || $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
                        throw invalid("invalid environment variable name '\(name)'")
                    }
                    guard let value = environment[name] else {
                        throw ConfigError.missingEnvironmentVariable(name: name, key: path, line: line)
                    }
                    out += value
                    i = raw.index(after: close)
                    continue
                }
            }
            out.append(c)
            i = next
        }
        return out
    }
}

/// Entries of a mapping, looked up by key.
struct OrderedEntries {
    let parent: ConfigNode
    var items: [(String, ConfigNode)] = []

    init(parent: ConfigNode) { self.parent = parent }

    subscript(key: String) -> ConfigNode? {
        items.first { $0.0 == key }?.1
    }

    func required(_ key: String) throws(ConfigError) -> ConfigNode {
        guard let node = self[key] else {
            throw ConfigError.invalid(key: parent.childPath(key), line: parent.line, message: "required key is missing")
        }
        return node
    }
}
