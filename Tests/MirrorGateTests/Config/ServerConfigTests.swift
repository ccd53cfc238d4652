import Foundation
import MirrorGateConfig
import Testing

/// `admin_listen`, `log`, `tls`, `auth` and `limits`.
@Suite("ServerConfig")
struct ServerConfigTests {
    static let registries = """
        registries:
          docker.io:
            upstreams:
              - url: https://mirror.gcr.io
        """

    static func load(_ top: String, files: [String: String] = [:]) throws(ConfigError) -> GatewayConfig {
        let loader = ConfigLoader(environment: [:], readFile: { path in
            guard let content = files[path] else { throw CocoaError(.fileReadNoSuchFile) }
            return content
        })
        return try loader.load(yaml: top + "\n" + registries)
    }

    static func error(_ top: String, files: [String: String] = [:]) -> String {
        do {
            _ = try load(top, files: files)
            return "loaded"
        } catch {
            return error.description
        }
    }

    @Test func defaults() throws {
        let config = try Self.load("listen: 127.0.0.1:5000")
        #expect(config.adminListen == nil)
        #expect(config.log == LogConfig(format: .text, level: "info"))
        #expect(config.tls == nil)
        #expect(config.auth == nil)
        #expect(config.limits == LimitsConfig())
        #expect(config.limits.maxConcurrentFetches == 32)
        #expect(config.limits.maxConnections == 4096)
        #expect(config.shutdown == ShutdownConfig(grace: .seconds(5), drainTimeout: .seconds(60)))
    }

    @Test func shutdown() throws {
        let config = try Self.load("shutdown: {grace: 0s, drain_timeout: 2m}")
        #expect(config.shutdown == ShutdownConfig(grace: .zero, drainTimeout: .seconds(120)))
    }

    @Test func everythingSet() throws {
        let config = try Self.load("""
            listen: 0.0.0.0:5000
            admin_listen: 127.0.0.1:9090
            log: {format: logfmt, level: debug}
            tls: {cert: /etc/tls/tls.crt, key: /etc/tls/tls.key}
            auth: {htpasswd: /etc/mirrorgate/htpasswd, realm: ci-mirror}
            limits: {max_header_size: 16KiB, idle_timeout: 30s, send_timeout: 2m, max_concurrent_fetches: 8, max_connections: 500}
            """, files: ["/etc/tls/tls.crt": "CERT", "/etc/tls/tls.key": "KEY", "/etc/mirrorgate/htpasswd": "u:x"])
        #expect(config.adminListen == ListenAddress(host: "127.0.0.1", port: 9090))
        #expect(config.log == LogConfig(format: .logfmt, level: "debug"))
        #expect(config.tls == ListenerTLSConfig(certificatePath: "/etc/tls/tls.crt", keyPath: "/etc/tls/tls.key"))
        #expect(config.auth == InboundAuthConfig(htpasswdPath: "/etc/mirrorgate/htpasswd", realm: "ci-mirror"))
        #expect(config.limits == LimitsConfig(maxHeaderSize: 16 << 10, idleTimeout: .seconds(30), sendTimeout: .seconds(120), maxConcurrentFetches: 8, maxConnections: 500))
        #expect(config.routingPlan.contains("8 concurrent fetches, 500 connections"))
    }

    @Test func authFailureLimit() throws {
        let defaults = try Self.load("auth: {htpasswd: /h}", files: ["/h": "u:x"])
        #expect(defaults.auth?.maxFailures == 20)
        #expect(defaults.auth?.failureWindow == .seconds(60))
        let set = try Self.load("auth: {htpasswd: /h, max_failures: 5, failure_window: 10m}", files: ["/h": "u:x"])
        #expect(set.auth == InboundAuthConfig(htpasswdPath: "/h", maxFailures: 5, failureWindow: .seconds(600)))
    }

    @Test(arguments: [
        ("log: {format: xml}", "log.format", "is not a log format"),
        ("log: {level: loud}", "log.level", "is not a log level"),
        ("log: {colour: true}", "log.colour", "unknown key"),
        ("tls: {cert: /missing.crt, key: /k}", "tls.cert", "cannot read /missing.crt"),
        ("tls: {cert: /c}", "tls", "key"),
        ("auth: {htpasswd: /nope}", "auth.htpasswd", "cannot read /nope"),
        ("auth: {htpasswd: /h, realm: 'a\"b'}", "auth.realm", "quotes"),
        ("auth: {htpasswd: /h, max_failures: 0}", "auth.max_failures", "between 1 and 100000"),
        ("auth: {htpasswd: /h, max_failures: many}", "auth.max_failures", "integer"),
        ("auth: {htpasswd: /h, failure_window: 500ms}", "auth.failure_window", "from 1s to 1d"),
        ("auth: {htpasswd: /h, failure_window: 2d}", "auth.failure_window", "from 1s to 1d"),
        ("limits: {max_header_size: 100}", "limits.max_header_size", "from 4KiB to 1MiB"),
        ("limits: {idle_timeout: 10ms}", "limits.idle_timeout", "at least 1s"),
        ("limits: {send_timeout: 0s}", "limits.send_timeout", "at least 1s"),
        ("limits: {max_concurrent_fetches: 0}", "limits.max_concurrent_fetches", "between 1 and 10000"),
        ("limits: {max_connections: 0}", "limits.max_connections", "between 1 and 1000000"),
        ("limits: {max_connections: lots}", "limits.max_connections", "integer"),
        ("listen: 0.0.0.0:5000\nadmin_listen: 127.0.0.1:5000", "admin_listen", "must differ from listen"),
        ("admin_listen: nonsense", "admin_listen", "host:port"),
        ("shutdown: {grace: 11m}", "shutdown.grace", "at most 10m"),
        ("shutdown: {drain_timeout: 0s}", "shutdown.drain_timeout", "from 1s to 1h"),
        ("shutdown: {drain: 5s}", "shutdown.drain", "unknown key"),
    ])
    func errorsNameTheKey(_ yaml: String, _ key: String, _ message: String) {
        let text = Self.error(yaml, files: ["/c": "C", "/k": "K", "/h": "u:x"])
        #expect(text.hasPrefix(key), "\(text)")
        #expect(text.contains(message), "\(text)")
    }
}
