import Foundation
import Testing

/// Nothing a client sends can add a line to the log, in the default `text` format or any
/// other, and `?ns=` is echoed in `OCI-Namespace` only when it is a registry host.
@Suite(.serialized)
struct LogInjectionTests {
    static let forged = "2026-12-01T07:00:00+0000 error mirrorgate: FORGED"

    @Test(arguments: ["text", "logfmt", "json"])
    func clientInputCannotForgeLogLines(_ format: String) async throws {
        let curl = try #require(ManagedProcess.which("curl"))
        var config = GatewayConfig.upstreams(["http://127.0.0.3:1"])
        config.setRegistry("evil.test", upstreams: [(name: "closed", url: "http://127.0.0.3:1")])
        if format != "text" { config.extraYAML = "log: {format: \(format)}\n" }
        let encoded = "x%0a" + Self.forged.replacingOccurrences(of: " ", with: "%20").replacingOccurrences(of: "+", with: "%2B")
        try await GatewayProcess.with(config) { gateway in
            func fetch(_ path: String) async throws -> (status: String, headers: String) {
                let result = try await ManagedProcess.run(curl, arguments: ["-sS", "--path-as-is", "-D", "-", "-o", "/dev/null", "\(gateway.url)\(path)"])
                return (String(result.stdoutText.split(separator: " ").dropFirst().first ?? ""), result.stdoutText)
            }
            // ns: refused before it is echoed or logged.
            let ns = try await fetch("/v2/library/alpine/manifests/latest?ns=\(encoded)")
            #expect(ns.status == "400", "\(ns.headers)")
            #expect(!ns.headers.lowercased().contains("oci-namespace"), "\(ns.headers)")
            let base = try await fetch("/v2/?ns=\(encoded)")
            #expect(base.status == "400")
            #expect(!base.headers.lowercased().contains("oci-namespace"))
            // A valid host is echoed (lowercased), an unknown one is 404 as before.
            let valid = try await fetch("/v2/?ns=Evil.Test")
            #expect(valid.status == "200")
            #expect(valid.headers.contains("OCI-Namespace: evil.test\r\n"), "\(valid.headers)")
            #expect(try await fetch("/v2/library/alpine/manifests/latest?ns=unknown.example").status == "404")
            // Other client text that reaches the log: the path, percent-decoded.
            _ = try await fetch("/v2/library/alp%0a\(Self.forged.replacingOccurrences(of: " ", with: "%20"))/manifests/latest")
            _ = try await fetch("/nowhere%0d%0a\(Self.forged.replacingOccurrences(of: " ", with: "%20"))")
            _ = try await fetch("/v2/library/alpine/manifests/latest%E2%80%A8FORGED")
            try await Task.sleep(for: .milliseconds(300))

            let lines = gateway.logText().split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            #expect(lines.count > 5)
            for line in lines {
                #expect(!line.hasPrefix("2026-12-01T07:00:00"), "a forged line: \(line)")
                #expect(!line.contains("\u{2028}") && !line.contains("\r"), "a line breaker reached the log: \(line)")
                switch format {
                case "json": #expect(line.hasPrefix("{") && line.hasSuffix("}"), "\(line)")
                case "logfmt": #expect(line.hasPrefix("time="), "\(line)")
                default: #expect(line.first?.isNumber == true, "a line that is not an event: \(line)")
                }
            }
            #expect(gateway.logText().contains("FORGED"), "the forged text never reached the log; the test proves nothing")
        }
    }
}
