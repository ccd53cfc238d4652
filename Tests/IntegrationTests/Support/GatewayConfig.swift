import Foundation

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

    /// The YAML text. `listenPort` 0 and `storagePath` nil are rendered as given
    /// (`GatewayProcess` fills them in before rendering).
    public func render() -> String {
        var lines = [
            "listen: 127.0.0.1:\(listenPort)",
            "storage:",
            "  path: \(Self.quoted(storagePath ?? "./data"))",
            "  max_size: \(maxSize)",
        ] + (maxBlobSize.map { ["  max_blob_size: \($0)"] } ?? []) + storageLines.map { "  " + $0 } + [
            "tags:",
            "  ttl: \(tagTTL)",
        ] + (refreshAfter.map { ["  refresh_after: \($0)"] } ?? []) + [
            "  serve_stale: \(serveStale)",
            "default_registry: \(Self.quoted(defaultRegistry))",
            "health:",
            "  interval: \(healthInterval)",
            "  timeout: \(healthTimeout)",
            "  failure_threshold: \(failureThreshold)",
        ]
        if shutdownGrace != nil || drainTimeout != nil {
            lines.append("shutdown:")
            if let shutdownGrace { lines.append("  grace: \(shutdownGrace)") }
            if let drainTimeout { lines.append("  drain_timeout: \(drainTimeout)") }
        }
        if registries.isEmpty {
            lines.append("registries: {}")
        } else {
            lines.append("registries:")
            for registry in registries {
                lines.append("  \(Self.quoted(registry.key)):")
                if let users = registry.users { lines.append("    users: [\(users.map(Self.quoted).joined(separator: ", "))]") }
                if let policy = registry.policy { lines.append("    policy: \(policy)") }
                lines.append("    upstreams:")
                for upstream in registry.upstreams {
                    lines.append("      - name: \(Self.quoted(upstream.name))")
                    lines.append("        url: \(Self.quoted(upstream.url))")
                    for line in upstream.extra { lines.append("        \(line)") }
                }
            }
        }
        var text = lines.joined(separator: "\n") + "\n"
        if !extraYAML.isEmpty { text += extraYAML.hasSuffix("\n") ? extraYAML : extraYAML + "\n" }
        return text
    }

    /// Leaves plain scalars alone and double-quotes anything YAML might misread.
    private static func quoted(_ value: String) -> String {
        let plain = value.allSatisfy { $0.isLetter || $0.isNumber || "._-/:".contains($0) }
            && !value.isEmpty && !value.hasPrefix("-") && !value.contains(": ")
        if plain { return value }
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "\"\(escaped)\""
    }
}
