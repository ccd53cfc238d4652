/// Why a configuration could not be loaded. Every case names the key path and, where the
/// YAML gives one, the line.
public enum ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be read.
    case unreadable(file: String, reason: String)
    /// The YAML itself is malformed.
    case syntax(file: String, line: Int?, message: String)
    /// A key holds a wrong type or a bad value, is unknown, or is missing.
    case invalid(key: String, line: Int?, message: String)
    /// `${VAR}` names a variable that is not set.
    case missingEnvironmentVariable(name: String, key: String, line: Int?)
    /// `password_file` names a file that cannot be read.
    case unreadableSecretFile(path: String, key: String, line: Int?, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason):
            return "cannot read configuration \(file): \(reason)"
        case .syntax(let file, let line, let message):
            return "\(file)\(line.map { ":\($0)" } ?? ""): YAML syntax error: \(message)"
        case .invalid(let key, let line, let message):
            return "\(Self.at(key, line)): \(message)"
        case .missingEnvironmentVariable(let name, let key, let line):
            return "\(Self.at(key, line)): environment variable \(name) is not set"
        case .unreadableSecretFile(let path, let key, let line, let reason):
            return "\(Self.at(key, line)): cannot read \(path): \(reason)"
        }
    }

    private static func at(_ key: String, _ line: Int?) -> String {
        line.map { "\(key) (line \($0))" } ?? key
    }
}
