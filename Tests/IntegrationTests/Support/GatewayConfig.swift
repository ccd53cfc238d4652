import Foundation
import Yams

/// Parameters of a MirrorGate `gateway.yaml`, rendered by ``render()``.
///
/// Produces, e.g.:
///
///     listen: 127.0.0.1:5000
///     storage:
///       path: /tmp/…/data
///       max_size: 1GiB
///     tags:
///       ttl: 10m
///       serve_stale: true
///     default_registry: docker.io
///     health:
///       interval: 15s
///       timeout: 5s
///       failure_threshold: 3
///     registries:
///       docker.io:
///         upstreams:
///           - name: up1
///             url: http://127.0.0.1:5001
public struct GatewayConfig: Sendable, Hashable {
    /// One upstream of a registry entry.
    public struct Upstream: Sendable, Hashable {
        /// The upstream's name (`up1`).
        public var name: String
        /// Its base URL (`http://127.0.0.1:5001`).
        public var url: String
        /// Further upstream keys, rendered verbatim (`prefix: mirror`, `resolve: false`).
        public var extra: [String]

        /// Creates an upstream.
        public init(name: String, url: String, extra: [String] = []) {
            self.name = name
            self.url = url
            self.extra = extra
        }
    }

    /// One entry under `registries:`.
    public struct Registry: Sendable, Hashable {
        /// The registry key, e.g. `docker.io` or `ghcr.io`.
        public var key: String
        /// Its upstreams, in priority order.
        public var upstreams: [Upstream]
        /// `users:`, the inbound users allowed to pull through it (needs `auth:`).
        public var users: [String]?
        /// `policy:` as flow YAML, rendered verbatim (`{allow: ["library/*"]}`).
        public var policy: String?

        /// Creates an entry.
        public init(key: String, upstreams: [Upstream], users: [String]? = nil, policy: String? = nil) {
            self.key = key
            self.upstreams = upstreams
            self.users = users
            self.policy = policy
        }
    }

    /// The port for `listen: 127.0.0.1:<port>`; 0 means "pick a free port at start".
    public var listenPort: Int
    /// `storage.path`; `nil` means `<gateway temp dir>/data`.
    public var storagePath: String?
    /// `storage.max_size`.
    public var maxSize: String
    /// `storage.max_blob_size` (left out when nil).
    public var maxBlobSize: String?
    /// More lines under `storage:`, rendered verbatim and indented (`backend: s3`, `s3:`, …;
    /// see ``MotoS3/storageLines(prefix:redirect:secret:)``).
    public var storageLines: [String] = []
    /// `shutdown.grace`: 0s by default here, so stopping a test's gateway takes no grace
    /// period (the gateway's own default is 5s); nil leaves the key out.
    public var shutdownGrace: String? = "0s"
    /// `shutdown.drain_timeout` (left out when nil).
    public var drainTimeout: String?
    /// `tags.ttl`.
    public var tagTTL: String
    /// `tags.refresh_after` (left out when nil: the gateway's default, at most the TTL).
    public var refreshAfter: String?
    /// `tags.serve_stale`.
    public var serveStale: Bool
    /// `default_registry`.
    public var defaultRegistry: String
    /// `health.interval`.
    public var healthInterval: String
    /// `health.timeout`.
    public var healthTimeout: String
    /// `health.failure_threshold`.
    public var failureThreshold: Int
    /// `registries:` entries, in order.
    public var registries: [Registry]
    /// Raw YAML appended at the end (top-level keys not generated above).
    public var extraYAML: String

    /// Creates a configuration; defaults suit fast tests.
    public init(
        listenPort: Int = 0,
        storagePath: String? = nil,
        maxSize: String = "1GiB",
        tagTTL: String = "10m",
        serveStale: Bool = true,
        defaultRegistry: String = "docker.io",
        healthInterval: String = "15s",
        healthTimeout: String = "5s",
        failureThreshold: Int = 3,
        registries: [Registry] = [],
        extraYAML: String = ""
    ) {
        self.listenPort = listenPort
        self.storagePath = storagePath
        self.maxSize = maxSize
        self.tagTTL = tagTTL
        self.serveStale = serveStale
        self.defaultRegistry = defaultRegistry
        self.healthInterval = healthInterval
        self.healthTimeout = healthTimeout
        self.failureThreshold = failureThreshold
        self.registries = registries
        self.extraYAML = extraYAML
    }

    /// A configuration with one registry key (default `docker.io`) whose upstreams are
    /// `urls`, named `up1`, `up2`, … in order.
    public static func upstreams(_ urls: [String], registry: String = "docker.io", tagTTL: String = "10m") -> GatewayConfig {
        let upstreams = urls.enumerated().map { Upstream(name: "up\($0.offset + 1)", url: $0.element) }
        return GatewayConfig(tagTTL: tagTTL, defaultRegistry: registry, registries: [Registry(key: registry, upstreams: upstreams)])
    }

    /// Adds (or replaces) registry `key` with `upstreams` given as `(name, url)` pairs.
    public mutating func setRegistry(_ key: String, upstreams: [(name: String, url: String)]) {
        let entry = Registry(key: key, upstreams: upstreams.map { Upstream(name: $0.name, url: $0.url) })
        if let index = registries.firstIndex(where: { $0.key == key }) {
            registries[index] = entry
        } else {
            registries.append(entry)
        }
    }

    /// The YAML text, emitted by Yams (libyaml) from a node tree, as a YAML library would
    /// write it, not pasted together: the raw snippets (``Upstream/extra``, ``storageLines``,
    /// ``Registry/policy``, ``extraYAML``) are parsed and merged in, so a malformed one fails
    /// here. `listenPort` 0 and `storagePath` nil are rendered as given (`GatewayProcess` fills
    /// them in before rendering).
    public func render() -> String {
        do {
            return try Yams.serialize(node: try node())
        } catch {
            preconditionFailure("GatewayConfig does not render as YAML: \(error)")
        }
    }

    private func node() throws -> Node {
        var storage: [(String, Node)] = [("path", Node(storagePath ?? "./data")), ("max_size", Node(maxSize))]
        if let maxBlobSize { storage.append(("max_blob_size", Node(maxBlobSize))) }
        storage += try Self.pairs(storageLines.joined(separator: "\n"))
        var tags: [(String, Node)] = [("ttl", Node(tagTTL))]
        if let refreshAfter { tags.append(("refresh_after", Node(refreshAfter))) }
        tags.append(("serve_stale", Node(serveStale ? "true" : "false", Tag(.bool))))
        var top: [(String, Node)] = [
            ("listen", Node("127.0.0.1:\(listenPort)")),
            ("storage", Self.mapping(storage)),
            ("tags", Self.mapping(tags)),
            ("default_registry", Node(defaultRegistry)),
            ("health", Self.mapping([
                ("interval", Node(healthInterval)), ("timeout", Node(healthTimeout)),
                ("failure_threshold", Node(String(failureThreshold), Tag(.int))),
            ])),
        ]
        var shutdown: [(String, Node)] = []
        if let shutdownGrace { shutdown.append(("grace", Node(shutdownGrace))) }
        if let drainTimeout { shutdown.append(("drain_timeout", Node(drainTimeout))) }
        if !shutdown.isEmpty { top.append(("shutdown", Self.mapping(shutdown))) }
        var entries: [(String, Node)] = []
        for registry in registries {
            var entry: [(String, Node)] = []
            if let users = registry.users { entry.append(("users", Node(users.map { Node($0) }))) }
            if let policy = registry.policy { entry.append(("policy", try Self.parse(policy))) }
            let upstreams = try registry.upstreams.map { upstream in
                Self.mapping([("name", Node(upstream.name)), ("url", Node(upstream.url))] + (try Self.pairs(upstream.extra.joined(separator: "\n"))))
            }
            entry.append(("upstreams", Node(upstreams)))
            entries.append((registry.key, Self.mapping(entry)))
        }
        top.append(("registries", Self.mapping(entries)))
        top += try Self.pairs(extraYAML)
        return Self.mapping(top)
    }

    private static func mapping(_ pairs: [(String, Node)]) -> Node {
        Node(pairs.map { (Node($0.0), $0.1) })
    }

    private static func parse(_ yaml: String) throws -> Node {
        guard let node = try Yams.compose(yaml: yaml) else { throw ConfigRenderError(yaml: yaml) }
        return node
    }

    /// The key/value pairs of a YAML mapping snippet, in order (none for an empty one).
    private static func pairs(_ yaml: String) throws -> [(String, Node)] {
        guard !yaml.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return [] }
        guard let mapping = try parse(yaml).mapping else { throw ConfigRenderError(yaml: yaml) }
        return mapping.map { ($0.key.string ?? "", $0.value) }
    }

    private struct ConfigRenderError: Error, CustomStringConvertible {
        let yaml: String
        var description: String { "not a YAML mapping: \(yaml)" }
    }
}
