import Foundation
import Testing

/// What a client and the log learn when an upstream fails (security review, finding 14, the
/// error-details part): each upstream by its configured name, and never a URL — with or
/// without credentials in it — from a transport error.
@Suite(.serialized)
struct ErrorDetailTests {
    @Test func transportErrorsNameTheUpstreamNotAURL() async throws {
        let secret = "hunter2-in-a-location"
        let closed = try FreePort.allocate()
        try await HostileUpstream.with(host: "127.0.0.2", internalHost: "127.0.0.1") { hostile in
            try await hostile.configure("""
                {"modes": {
                  "userinfo": {"behaviour": "redir", "location": "http://mallory:\(secret)@localhost:\(closed)/x"},
                  "closed": {"behaviour": "redir", "location": "http://localhost:\(closed)/x"}
                }}
                """)
            var config = GatewayConfig(defaultRegistry: "evil.test", healthInterval: "1h", failureThreshold: 1000)
            config.registries = [.init(key: "evil.test", upstreams: [
                .init(name: "shady-mirror", url: hostile.url, extra: ["redirect_hosts: [localhost]"]),
            ])]
            try await GatewayProcess.with(config) { gateway in
                for mode in ["userinfo", "closed"] {
                    let answer = try await HTTPFetch.get("\(gateway.url)/v2/\(mode)/x/tags/list")
                    #expect(answer.status == 502, "\(mode): \(answer.status) \(answer.text)")
                    #expect(answer.text.contains("shady-mirror"), "\(mode): \(answer.text)")
                    for leak in [secret, "mallory", "localhost", "127.0.0", "\(closed)", "http://", "HTTPClientError"] {
                        #expect(!answer.text.contains(leak), "\(mode) leaks \(leak): \(answer.text)")
                    }
                }
                let log = gateway.logText()
                #expect(!log.contains(secret) && !log.contains("mallory"), "\(gateway.logTail())")
            }
        }
    }
}
