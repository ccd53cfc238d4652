import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A swift-log handler writing one line per event to standard error, as text, JSON or logfmt.
///
/// Written by hand: swift-log ships only a plain-text stream handler, which writes metadata
/// as it comes, so a client's `?ns=x%0aFORGED` once wrote a forged line; and the well-kept
/// structured handlers sit in larger frameworks this gateway does not otherwise need.
/// Each line carries `time`, `level`, `msg`, `logger` and the metadata, flattened
/// (`a.b=c` for nested dictionaries). Lines are written with a single `write(2)`, so
/// concurrent events never interleave. In every format, control characters (C0, DEL, C1)
/// and Unicode line and paragraph separators are escaped: one event is always one line.
public struct LineLogHandler: LogHandler {
    public enum Format: Sendable {
        /// swift-log's stream layout, `time level logger: k=v … [source] message`, escaped.
        case text
        case json
        case logfmt
    }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let format: Format
    let output: @Sendable (String) -> Void

    public init(label: String, format: Format, level: Logger.Level = .info, output: @escaping @Sendable (String) -> Void = LineLogHandler.standardError) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        if format == .text {
            var pairs: [(String, String)] = []
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) { Self.flatten(key, value, into: &pairs) }
            output(Self.renderText(
                time: Self.timestamp(), level: event.level.rawValue, label: label, metadata: pairs, source: event.source,
                message: event.message.description) + "\n")
            return
        }
        var fields: [(String, String)] = [
            ("time", Self.timestamp()),
            ("level", event.level.rawValue),
            ("msg", event.message.description),
        ]
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            Self.flatten(key, value, into: &fields)
        }
        fields.append(("logger", label))
        output(Self.render(fields, format: format) + "\n")
    }

    /// Renders fields as one JSON object or one logfmt line (without the newline); `text`
    /// renders them as escaped `key=value` pairs.
    public static func render(_ fields: [(String, String)], format: Format) -> String {
        switch format {
        case .json:
            return "{" + fields.map { "\(jsonString($0.0)):\(jsonString($0.1))" }.joined(separator: ",") + "}"
        case .logfmt:
            return fields.map { "\(logfmtKey($0.0))=\(logfmtValue($0.1))" }.joined(separator: " ")
        case .text:
            return fields.map { "\(textEscaped($0.0))=\(textEscaped($0.1))" }.joined(separator: " ")
        }
    }

    /// One `text` line (without the newline), laid out like swift-log's `StreamLogHandler`.
    public static func renderText(
        time: String, level: String, label: String, metadata: [(String, String)], source: String, message: String
    ) -> String {
        let pairs = metadata.isEmpty ? "" : " " + render(metadata, format: .text)
        return "\(time) \(level) \(textEscaped(label)):\(pairs) [\(textEscaped(source))] \(textEscaped(message))"
    }

    /// Whether a scalar could end or rewrite a line for some reader: C0, DEL, C1 and the
    /// Unicode line and paragraph separators.
    static func isLineBreaking(_ c: Unicode.Scalar) -> Bool {
        c.value < 0x20 || (0x7F...0x9F).contains(c.value) || c.value == 0x2028 || c.value == 0x2029
    }

    /// `text` values: backslash, CR, LF and tab as `\\`, `\r`, `\n`, `\t`, other line-breaking
    /// scalars as `\u{…}`; everything else as it is.
    static func textEscaped(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0 == "\\" || isLineBreaking($0) }) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 8)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where isLineBreaking(c): out += "\\u{" + String(c.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func flatten(_ key: String, _ value: Logger.Metadata.Value, into fields: inout [(String, String)]) {
        switch value {
        case .string(let s): fields.append((key, s))
        case .stringConvertible(let c): fields.append((key, c.description))
        case .array(let items): fields.append((key, "[" + items.map(\.description).joined(separator: ",") + "]"))
        case .dictionary(let dict):
            for (k, v) in dict.sorted(by: { $0.key < $1.key }) { flatten("\(key).\(k)", v, into: &fields) }
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where isLineBreaking(c):
                out += String(format: "\\u%04x", c.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Keys keep letters, digits and `_.-/`; anything else becomes `_`.
    static func logfmtKey(_ s: String) -> String {
        let cleaned = String(s.unicodeScalars.map { c -> Character in
            c.isASCII && (CharacterSet.alphanumerics.contains(c) || "_.-/".unicodeScalars.contains(c)) ? Character(c) : "_"
        })
        return cleaned.isEmpty ? "_" : cleaned
    }

    /// Bare when safe, else quoted with escapes (logfmt as read by Loki, Vector and `hl`).
    static func logfmtValue(_ s: String) -> String {
        let needsQuotes = s.isEmpty || s.unicodeScalars.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\\" || isLineBreaking($0) }
        return needsQuotes ? jsonString(s) : s
    }

    static func timestamp() -> String {
        let now = Date()
        return Self.formatter.withLock { $0.string(from: now) }
    }

    private static let formatter: Mutex<ISO8601DateFormatter> = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return Mutex(f)
    }()

    /// Writes the line to standard error in one system call.
    public static let standardError: @Sendable (String) -> Void = { line in
        var line = line
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 { if errno == EINTR { continue }; return }
                offset += n
            }
        }
    }
}
