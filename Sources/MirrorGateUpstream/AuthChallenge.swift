/// One challenge from a `WWW-Authenticate` header (RFC 9110 §11.6.1).
public struct AuthChallenge: Equatable, Sendable {
    /// Lowercased scheme (`bearer`, `basic`).
    public var scheme: String
    /// Parameters with lowercased names.
    public var parameters: [String: String]

    public init(scheme: String, parameters: [String: String]) {
        self.scheme = scheme
        self.parameters = parameters
    }

    /// Parses every challenge in one header value, for example
    /// `Bearer realm="https://auth.docker.io/token",service="registry.docker.io", Basic realm="x"`.
    ///
    /// Hand-written: no maintained Swift library parses `WWW-Authenticate`. It is total: any
    /// input yields a (possibly empty) list, never a crash; malformed parameters are skipped.
    public static func parse(_ header: String) -> [AuthChallenge] {
        let s = Array(header.utf8)
        var i = 0
        var result: [AuthChallenge] = []

        func skipSpaces() { while i < s.count, s[i] == 0x20 || s[i] == 0x09 { i += 1 } }
        func isTokenChar(_ c: UInt8) -> Bool {
            switch c {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
            default: return "!#$%&'*+-.^_`|~/".utf8.contains(c)
            }
        }
        func token() -> String? {
            let start = i
            while i < s.count, isTokenChar(s[i]) { i += 1 }
            return i > start ? String(decoding: s[start..<i], as: UTF8.self) : nil
        }
        func quoted() -> String {
            // s[i] == '"'
            i += 1
            var out: [UInt8] = []
            while i < s.count, s[i] != 0x22 {
                if s[i] == 0x5C, i + 1 < s.count { i += 1 }
                out.append(s[i])
                i += 1
            }
            if i < s.count { i += 1 }
            return String(decoding: out, as: UTF8.self)
        }

        while i < s.count {
            skipSpaces()
            while i < s.count, s[i] == 0x2C { i += 1; skipSpaces() }
            guard let scheme = token() else {
                if i < s.count { i += 1 }
                continue
            }
            var challenge = AuthChallenge(scheme: scheme.lowercased(), parameters: [:])
            // Parameters: name=value pairs separated by commas, until a token not followed by '='.
            while i < s.count {
                skipSpaces()
                while i < s.count, s[i] == 0x2C { i += 1; skipSpaces() }
                let save = i
                guard let name = token() else { break }
                skipSpaces()
                guard i < s.count, s[i] == 0x3D else {
                    // A new challenge begins (or token68, which registries do not use).
                    i = save
                    break
                }
                i += 1
                skipSpaces()
                let value: String
                if i < s.count, s[i] == 0x22 {
                    value = quoted()
                } else {
                    value = token() ?? ""
                }
                challenge.parameters[name.lowercased()] = value
            }
            result.append(challenge)
        }
        return result
    }
}
