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
