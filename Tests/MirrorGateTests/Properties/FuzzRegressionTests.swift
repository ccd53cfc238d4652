import MirrorGateConfig
import Testing

/// Inputs with which the libFuzzer targets in `fuzz/` crashed the parsers, byte for byte, so
/// that `make test` keeps them fixed without running the fuzzer. (Run against the code before
/// the fixes in `ConfigValues` and `ConfigLoader` that the property suite had already prompted,
/// the fuzzer found both within two minutes.)
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    /// FuzzConfigValues: `format` trapped on the parsed duration (arithmetic overflow).
    @Test func durationThatOverflowedFormat() {
        let text = "1129ms223372036854d"
        let error = #expect(throws: ValueParseError.self) { try ConfigValues.parseDuration(text) }
        #expect(error?.message.contains("too long") == true)
        #expect(ConfigValues.format(.seconds(223_372_036_854 * 86_400) + .milliseconds(1129)) == "223372036854d1s129ms")
    }

    /// FuzzConfigLoader: NULs, DEL and invalid UTF-8 in a `password_file` value gave a syntax
    /// error without a line.
    @Test func controlBytesInAValue() {
        let bytes = Array("""
            registries:
              docker.io:
                upstreams:
                  - url: https://mirror.gcr.io
                    prefix: a/b
                    username: ${USER}
                    password_file: /run/secrets/
            """.utf8) + [0, 0, 127, 54, 153, 112, 59, 232] + Array("    budget: r.gcr.io\n    indow: 1h}\n".utf8)
        let yaml = String(decoding: bytes, as: UTF8.self)
        let error = #expect(throws: ConfigError.self) {
            try ConfigLoader(environment: ["USER": "alice"], readFile: { _ in "pw" }).load(yaml: yaml)
        }
        guard case .syntax(let file, let line, let message)? = error else {
            Issue.record("expected .syntax, got \(String(describing: error))")
            return
        }
        #expect(file == "gateway.yaml")
        #expect(line == 7)
        #expect(message.contains("control characters"))
    }
}
