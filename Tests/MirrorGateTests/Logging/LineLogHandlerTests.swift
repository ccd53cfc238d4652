import Foundation
import Logging
import MirrorGateLogging
import Synchronization
import Testing

@Suite("LineLogHandler")
struct LineLogHandlerTests {
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
    }

    func logger(_ format: LineLogHandler.Format, into sink: Lines) -> Logger {
        Logger(label: "test") { label in
            LineLogHandler(label: label, format: format, level: .info) { line in sink.lines.withLock { $0.append(line) } }
        }
    }

    @Test func jsonLinesAreValidJSONWithEveryField() throws {
        let sink = Lines()
        let log = logger(.json, into: sink)
        log.info("request", metadata: [
            "path": "/v2/a\"b\\c\n\u{01}", "status": "200", "nested": ["k": "v"], "list": ["a", "b"],
        ])
        log.debug("hidden")
        #expect(sink.all.count == 1)
        let line = try #require(sink.all.first)
        #expect(line.hasSuffix("\n"))
        #expect(line.dropLast().contains("\n") == false, "one event, one line")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["msg"] == "request")
        #expect(object["level"] == "info")
        #expect(object["path"] == "/v2/a\"b\\c\n\u{01}")
        #expect(object["nested.k"] == "v")
        #expect(object["list"] == "[a,b]")
        #expect(object["logger"] == "test")
        #expect(object["time"]?.hasPrefix("20") == true)
    }

    @Test func logfmtQuotesWhatNeedsIt() throws {
        let sink = Lines()
        logger(.logfmt, into: sink).warning("circuit opened", metadata: ["upstream": "up1", "reason": "timed out: no head", "empty": "", "eq": "a=b"])
        let line = try #require(sink.all.first)
        #expect(line.contains(" level=warning "))
        #expect(line.contains(" msg=\"circuit opened\" "))
        #expect(line.contains(" upstream=up1 "))
        #expect(line.contains(" reason=\"timed out: no head\" "))
        #expect(line.contains(" empty=\"\" "))
        #expect(line.contains(" eq=\"a=b\" "))
        #expect(line.hasSuffix(" logger=test\n"))
    }

    @Test func renderEscapesKeysAndControlCharacters() {
        #expect(LineLogHandler.render([("a b", "x\ty")], format: .logfmt) == "a_b=\"x\\ty\"")
        #expect(LineLogHandler.render([("k", "\u{7F}")], format: .json) == "{\"k\":\"\\u007f\"}")
    }
}

/// The `text` format: swift-log's layout, one event per line whatever the metadata holds.
@Suite("LineLogHandler text")
struct LineLogHandlerTextTests {
    @Test func textLooksLikeSwiftLogsStreamFormat() throws {
        let sink = LineLogHandlerTests.Lines()
        let log = Logger(label: "mirrorgate") { label in
            LineLogHandler(label: label, format: .text, level: .info) { line in sink.lines.withLock { $0.append(line) } }
        }
        log.info("request", metadata: ["status": "200", "user": "ci"])
        let line = try #require(sink.all.first)
        #expect(line.hasSuffix(" info mirrorgate: status=200 user=ci [MirrorGateTests] request\n"), "\(line)")
        #expect(line.hasPrefix("20"))
    }

    /// `?ns=x%0a<timestamp> error mirrorgate: FORGED` once wrote a second, forged line.
    @Test func controlCharactersCannotStartALine() throws {
        let sink = LineLogHandlerTests.Lines()
        let log = Logger(label: "mirrorgate") { label in
            LineLogHandler(label: label, format: .text, level: .info) { line in sink.lines.withLock { $0.append(line) } }
        }
        let forged = "x\n2026-12-01T07:00:00+0000 error mirrorgate: FORGED"
        log.info("request", metadata: ["error": "registry '\(forged)' is not configured", "k\r\n": "\u{85}\u{2028}\u{1B}[31m\\n"])
        log.error("bad \(forged)")
        #expect(sink.all.count == 2)
        for line in sink.all {
            #expect(line.dropLast().allSatisfy { !$0.isNewline }, "an event spans lines: \(line)")
            #expect(!line.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || (0x7F...0x9F).contains($0.value) })
        }
        #expect(sink.all[0].contains(#"error=registry 'x\n2026-12-01T07:00:00+0000 error mirrorgate: FORGED' is not configured"#), "\(sink.all[0])")
        #expect(sink.all[0].contains(#"k\r\n=\u{85}\u{2028}\u{1b}[31m\\n"#), "\(sink.all[0])")
        #expect(sink.all[1].hasSuffix(#"bad x\n2026-12-01T07:00:00+0000 error mirrorgate: FORGED"# + "\n"))
    }

    @Test(arguments: [LineLogHandler.Format.json, .logfmt])
    func structuredFormatsEscapeC1AndSeparatorsToo(_ format: LineLogHandler.Format) {
        let rendered = LineLogHandler.render([("k", "a\u{85}b\u{2028}c\u{9B}d")], format: format)
        #expect(!rendered.unicodeScalars.contains { (0x80...0x9F).contains($0.value) || $0.value == 0x2028 }, "\(rendered)")
        #expect(rendered.contains("\\u0085") && rendered.contains("\\u2028") && rendered.contains("\\u009b"))
    }
}
