#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import RegistryModel
import Yams

/// Loads `gateway.yaml`: parses, expands `${VAR}`, reads `password_file`s and validates.
public struct ConfigLoader: Sendable {
    public var environment: [String: String]
    /// Reads a secret file; replaceable in tests.
    public var readFile: @Sendable (String) throws -> String

    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        readFile: @escaping @Sendable (String) throws -> String = { try String(contentsOfFile: $0, encoding: .utf8) }
    ) {
        self.environment = environment
        self.readFile = readFile
    }

    /// Loads and validates the file at `path`.
    public func load(file path: String) throws(ConfigError) -> GatewayConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw .unreadable(file: path, reason: (error as NSError).localizedDescription)
        }
        return try load(yaml: text, file: path)
    }

    /// Loads and validates YAML text.
    public func load(yaml text: String, file: String = "gateway.yaml") throws(ConfigError) -> GatewayConfig {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigError.invalid(key: "registries", line: nil, message: "the configuration is empty; at least one registry is required")
            }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw .syntax(file: file, line: Self.line(of: error), message: Self.problem(of: error))
        } catch {
            throw .syntax(file: file, line: nil, message: "\(error)")
        }
        return try decode(ConfigNode(node: root, path: "", environment: environment))
    }

    private func decode(_ root: ConfigNode) throws(ConfigError) -> GatewayConfig {
        let top = try root.mapping(allowed: [
            "listen", "admin_listen", "storage", "tags", "default_registry", "health", "registries", "log", "tls", "auth", "limits",
            "shutdown", "metadata", "cluster", "ledger",
        ])

        let listen = try top["listen"].map { n throws(ConfigError) in try Self.listenAddress(n) } ?? ListenAddress(host: "0.0.0.0", port: 5000)

        let storage = try storage(top["storage"])

        var tags = TagConfig(ttl: .seconds(600), serveStale: true)
        if let node = top["tags"] {
            let t = try node.mapping(allowed: ["refresh_after", "ttl", "serve_stale"])
            if let ttl = t["ttl"] { tags.ttl = try ttl.duration() }
            if let stale = t["serve_stale"] { tags.serveStale = try stale.bool() }
            if let refresh = t["refresh_after"] {
                tags.refreshAfter = try refresh.duration()
                guard tags.refreshAfter <= tags.ttl else {
                    throw refresh.invalid("must not exceed tags.ttl (\(ConfigValues.format(tags.ttl))): an answer older than ttl is never served without revalidation")
                }
            } else {
                tags.refreshAfter = min(TagConfig.defaultRefreshAfter, tags.ttl)
            }
        }

        var health = HealthConfig(interval: .seconds(15), timeout: .seconds(2), failureThreshold: 3)
        if let node = top["health"] {
            let h = try node.mapping(allowed: ["interval", "timeout", "failure_threshold"])
            if let i = h["interval"] {
                health.interval = try i.duration()
                guard health.interval >= .milliseconds(100) else { throw i.invalid("must be at least 100ms") }
            }
            if let t = h["timeout"] {
                health.timeout = try t.duration()
                guard health.timeout >= .milliseconds(10) else { throw t.invalid("must be at least 10ms") }
            }
            if let f = h["failure_threshold"] { health.failureThreshold = try f.int(min: 1, max: 1000) }
        }

        let registriesNode = try top.required("registries")
        let entries = try registriesNode.freeMapping()
        guard !entries.isEmpty else { throw registriesNode.invalid("at least one registry is required") }
        var registries: [RegistryConfig] = []
        let authConfigured = top["auth"] != nil
        for entry in entries {
            guard Self.isRegistryHost(entry.key) else {
                throw ConfigError.invalid(
                    key: entry.value.path, line: entry.line,
                    message: "'\(entry.key)' is not a registry host (expected a host name with a dot or a port, or localhost, such as docker.io or registry.local:5000)")
            }
            registries.append(try registry(key: entry.key, entry.value, authConfigured: authConfigured))
        }

        let defaultRegistry: String
        if let node = top["default_registry"] {
            defaultRegistry = try node.nonEmptyString()
            guard registries.contains(where: { $0.key == defaultRegistry }) else {
                throw node.invalid("'\(defaultRegistry)' is not one of the configured registries (\(registries.map(\.key).joined(separator: ", ")))")
            }
        } else {
            defaultRegistry = registries.contains(where: { $0.key == "docker.io" }) ? "docker.io" : registries[0].key
        }

        let adminListen = try top["admin_listen"].map { n throws(ConfigError) in try Self.listenAddress(n) }
        if let adminListen, let node = top["admin_listen"], adminListen.port != 0, adminListen.port == listen.port,
           adminListen.host == listen.host || adminListen.host == "0.0.0.0" || listen.host == "0.0.0.0" {
            throw node.invalid("must differ from listen (\(listen)); leave it out to serve /healthz, /readyz and /metrics on listen")
        }

        let metadata = try metadata(top["metadata"])
        return GatewayConfig(
            listen: listen, storage: storage, tags: tags, defaultRegistry: defaultRegistry,
            health: health, registries: registries, adminListen: adminListen,
            log: try log(top["log"]), tls: try tls(top["tls"]), auth: try auth(top["auth"]), limits: try limits(top["limits"]),
            shutdown: try shutdown(top["shutdown"]), metadata: metadata,
            cluster: try cluster(top["cluster"], metadata: metadata, listen: listen, adminListen: adminListen),
            ledger: try ledger(top["ledger"]))
    }

    private func shutdown(_ node: ConfigNode?) throws(ConfigError) -> ShutdownConfig {
        var shutdown = ShutdownConfig()
        guard let node else { return shutdown }
        let s = try node.mapping(allowed: ["grace", "drain_timeout"])
        if let g = s["grace"] {
            shutdown.grace = try g.duration()
            guard shutdown.grace <= .seconds(600) else { throw g.invalid("must be at most 10m") }
        }
        if let d = s["drain_timeout"] {
            shutdown.drainTimeout = try d.duration()
            guard shutdown.drainTimeout >= .seconds(1), shutdown.drainTimeout <= .seconds(3600) else { throw d.invalid("must be from 1s to 1h") }
        }
        return shutdown
    }

    private func registry(key: String, _ node: ConfigNode, authConfigured: Bool) throws(ConfigError) -> RegistryConfig {
        let r = try node.mapping(allowed: ["upstreams", "users", "policy"])
        let list = try r.required("upstreams")
        let items = try list.sequence()
        guard !items.isEmpty else { throw list.invalid("at least one upstream is required") }
        var upstreams: [UpstreamConfig] = []
        for item in items {
            let upstream = try self.upstream(item)
            if upstreams.contains(where: { $0.name == upstream.name }) {
                throw item.invalid("upstream name '\(upstream.name)' is used twice in this registry; give each a distinct name")
            }
            upstreams.append(upstream)
        }
        let users = try r["users"].map { n throws(ConfigError) in try Self.registryUsers(n, authConfigured: authConfigured) }
        let policy = try r["policy"].map { n throws(ConfigError) in try Self.repositoryPolicy(n, registry: key) }
        return RegistryConfig(key: key, upstreams: upstreams, users: users, policy: policy)
    }

    private func upstream(_ node: ConfigNode) throws(ConfigError) -> UpstreamConfig {
        let u = try node.mapping(allowed: [
            "name", "url", "prefix", "username", "password", "password_file", "budget", "resolve",
            "skip_tls_verify", "auth_hosts", "redirect_hosts",
        ])
        let urlNode = try u.required("url")
        let url = try Self.upstreamURL(urlNode)
        var config = UpstreamConfig(name: url.host, url: url)
        if let n = u["name"] {
            config.name = try n.nonEmptyString()
            guard config.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }), config.name.count <= 64 else {
                throw n.invalid("must be 1-64 characters of letters, digits, '.', '_' or '-'")
            }
        }
        if let p = u["prefix"] {
            let prefix = try p.string().trimmingCharacters(in: "/")
            if !prefix.isEmpty {
                for component in prefix.split(separator: "/", omittingEmptySubsequences: false) {
                    guard Self.isRepositoryComponent(component) else {
                        throw p.invalid("'\(prefix)' is not a repository path (lowercase letters, digits and separators, components joined by '/')")
                    }
                }
            }
            config.prefix = prefix
        }
        if let n = u["username"] { config.username = try n.nonEmptyString() }
        if let p = u["password"], let f = u["password_file"] {
            _ = p
            throw f.invalid("set either password or password_file, not both")
        }
        if let p = u["password"] { config.password = Secret(try p.string()) }
        if let f = u["password_file"] {
            let path = try f.nonEmptyString()
            do {
                var secret = try readFile(path)
                // "\r\n" is one Character in Swift: strip line ends scalar by scalar.
                while let last = secret.unicodeScalars.last, last == "\n" || last == "\r" {
                    secret.unicodeScalars.removeLast()
                }
                config.password = Secret(secret)
            } catch {
                throw ConfigError.unreadableSecretFile(path: path, key: f.path, line: f.line, reason: Self.reason(error))
            }
        }
        if config.username != nil, config.password == nil {
            throw (u["username"] ?? node).invalid("username is set but neither password nor password_file is")
        }
        if config.password != nil, config.username == nil {
            throw (u["password"] ?? u["password_file"] ?? node).invalid("a password needs a username")
        }
        if let b = u["budget"] {
            let budget = try b.mapping(allowed: ["pulls", "window"])
            let pulls = try budget.required("pulls").int(min: 1)
            let windowNode = try budget.required("window")
            let window = try windowNode.duration()
            guard window >= .seconds(1) else { throw windowNode.invalid("must be at least 1s") }
            config.budget = BudgetConfig(pulls: pulls, window: window)
        }
        if let r = u["resolve"] { config.resolve = try r.bool() }
        if let s = u["skip_tls_verify"] { config.skipTLSVerify = try s.bool() }
        if let a = u["auth_hosts"] { config.authHosts = try Self.hostList(a) }
        if let r = u["redirect_hosts"] { config.redirectHosts = try Self.hostList(r) }
        return config
    }

    /// A list of hosts: names or IP address literals (IPv6 with or without brackets, kept
    /// without), lowercase, no port.
    static func hostList(_ node: ConfigNode) throws(ConfigError) -> [String] {
        try node.sequence().map { h throws(ConfigError) in
            var host = try h.nonEmptyString().lowercased()
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard Self.isHostName(host) || Self.isIPv6Literal(host) else {
                throw h.invalid("'\(host)' is not a host name or IP address (no port, no scheme)")
            }
            return host
        }
    }

    static func isIPv6Literal(_ s: String) -> Bool {
        var address = in6_addr()
        return s.contains(":") && inet_pton(AF_INET6, s, &address) == 1
    }

    // MARK: - Value checks

    static func listenAddress(_ node: ConfigNode) throws(ConfigError) -> ListenAddress {
        let s = try node.nonEmptyString()
        var host: String
        let portText: Substring
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]"), s[s.index(after: close)...].hasPrefix(":") else {
                throw node.invalid("expected host:port, such as 0.0.0.0:5000 or [::]:5000")
            }
            host = String(s[s.index(after: s.startIndex)..<close])
            portText = s[s.index(close, offsetBy: 2)...]
        } else {
            guard let colon = s.lastIndex(of: ":"), !s[..<colon].contains(":") else {
                throw node.invalid("expected host:port, such as 0.0.0.0:5000 or [::]:5000 (IPv6 hosts in brackets)")
            }
            host = String(s[..<colon])
            portText = s[s.index(after: colon)...]
        }
        if host.isEmpty { host = "0.0.0.0" }
        guard let port = Self.port(portText), (0...65535).contains(port) else {
            throw node.invalid("port must be a number from 0 to 65535")
        }
        return ListenAddress(host: host, port: port)
    }

    static func upstreamURL(_ node: ConfigNode) throws(ConfigError) -> UpstreamURL {
        let s = try node.nonEmptyString()
        guard let components = URLComponents(string: s), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else {
            throw node.invalid("'\(s)' is not an http:// or https:// URL with a host")
        }
        guard components.user == nil, components.password == nil else {
            throw node.invalid("put credentials in username and password, not in the URL")
        }
        guard components.query == nil, components.fragment == nil else {
            throw node.invalid("the URL must not have a query or fragment")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw node.invalid("port must be from 1 to 65535")
        }
        var path = components.path
        while path.hasSuffix("/") { path.removeLast() }
        if path.hasSuffix("/v2") { path.removeLast(3) }
        // URLComponents keeps the brackets of an IPv6 host; UpstreamURL adds them back when it renders.
        var bareHost = host.lowercased()
        if bareHost.hasPrefix("["), bareHost.hasSuffix("]") { bareHost = String(bareHost.dropFirst().dropLast()) }
        return UpstreamURL(scheme: scheme, host: bareHost, port: components.port, basePath: path)
    }

    /// A registry host as clients name it: contains a dot or a port, or is `localhost`.
    public static func isRegistryHost(_ s: String) -> Bool {
        var host = Substring(s)
        if let colon = s.lastIndex(of: ":") {
            guard let port = port(s[s.index(after: colon)...]), (1...65535).contains(port) else { return false }
            host = s[..<colon]
        } else if !s.contains("."), s != "localhost" {
            return false
        }
        return isHostName(String(host))
    }

    /// A port number: digits only (`Int(_:)` also takes `+5000`, which no client writes, so a
    /// registry key `localhost:+5000` could never match a request).
    static func port(_ s: Substring) -> Int? {
        guard !s.isEmpty, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(s)
    }

    static func isHostName(_ s: String) -> Bool {
        guard !s.isEmpty, s.count <= 253 else { return false }
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
                && label.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
        }
    }

    /// A component of distribution's name grammar: the prefix goes in front of validated names
    /// in upstream paths, so `a..b` or `a._b` must not pass.
    static func isRepositoryComponent(_ s: Substring) -> Bool {
        RepositoryName.isValidComponent(s)
    }

    static func reason(_ error: any Error) -> String {
        let ns = error as NSError
        if ns.domain == NSCocoaErrorDomain, ns.code == NSFileReadNoSuchFileError { return "no such file" }
        if ns.domain == NSCocoaErrorDomain, ns.code == NSFileReadNoPermissionError { return "permission denied" }
        return ns.localizedDescription
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): mark.line
        case .duplicatedKeysInMapping(_, let context): context.mark.line
        case .reader(_, let offset?, _, let yaml):
            // The reader (bad encoding, control characters) gives a character offset, not a mark.
            yaml.prefix(offset).reduce(1) { $1.isNewline ? $0 + 1 : $0 }
        default: nil
        }
    }

    private static func problem(of error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _), .composer(let context, let problem, _, _):
            context.map { "\($0.text) \(problem)" } ?? problem
        case .duplicatedKeysInMapping(let duplicates, _):
            "duplicate keys: \(duplicates.joined(separator: ", "))"
        case .reader(let problem, _, let value, _):
            "\(problem) (U+\(String(UInt32(bitPattern: value), radix: 16, uppercase: true)))"
        default:
            "\(error)"
        }
    }
}
