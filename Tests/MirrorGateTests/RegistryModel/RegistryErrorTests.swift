import Foundation
import RegistryModel
import Testing

@Suite("RegistryError")
struct RegistryErrorTests {
    /// Decodes an envelope and returns its single error entry.
    static func entry(_ envelope: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(envelope.utf8))
        let root = try #require(object as? [String: Any])
        #expect(root.count == 1)
        let errors = try #require(root["errors"] as? [[String: Any]])
        #expect(errors.count == 1)
        return try #require(errors.first)
    }

    @Test func envelopeWithoutDetail() throws {
        let error = RegistryError(.manifestUnknown, "manifest unknown")
        #expect(error.envelope == #"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#)
        let entry = try Self.entry(error.envelope)
        #expect(entry["code"] as? String == "MANIFEST_UNKNOWN")
        #expect(entry["message"] as? String == "manifest unknown")
        #expect(entry["detail"] == nil)
    }

    @Test func envelopeWithDetail() throws {
        let error = RegistryError(.blobUnknown, "blob unknown", detail: "a: not found (404)")
        let entry = try Self.entry(error.envelope)
        #expect(entry["code"] as? String == "BLOB_UNKNOWN")
        #expect(entry["message"] as? String == "blob unknown")
        #expect(entry["detail"] as? String == "a: not found (404)")
    }

    @Test(arguments: [
        #"a "quoted" word"#,
        "back\\slash",
        "line\nbreak\r\nand\ttab",
        "nul\u{0}bell\u{7}esc\u{1B}unit\u{1F}del\u{7F}",
        "emoji 🐳 and accents é ß 中文",
        "\u{2028}\u{2029}",
        "</script><!--",
        #"{"errors":[]}"#,
        "",
        String((0..<0x20).map { Character(Unicode.Scalar($0)!) }),
    ])
    func escapesHostileStrings(_ text: String) throws {
        let error = RegistryError(.nameInvalid, text, detail: text)
        let envelope = error.envelope
        // Raw control characters never appear in the output.
        #expect(!envelope.unicodeScalars.contains { $0.value < 0x20 })
        let entry = try Self.entry(envelope)
        #expect(entry["code"] as? String == "NAME_INVALID")
        #expect(entry["message"] as? String == text)
        #expect(entry["detail"] as? String == text)
    }

    @Test func quoteEscapes() {
        #expect(JSONString.quote("") == #""""#)
        #expect(JSONString.quote("a\"b") == #""a\"b""#)
        #expect(JSONString.quote("a\\b") == #""a\\b""#)
        #expect(JSONString.quote("\n\r\t") == #""\n\r\t""#)
        #expect(JSONString.quote("\u{0}\u{1}\u{1F}") == #""\u0000\u0001\u001f""#)
    }

    @Test(arguments: [
        (RegistryError.Code.blobUnknown, "BLOB_UNKNOWN", 404),
        (.manifestUnknown, "MANIFEST_UNKNOWN", 404),
        (.nameUnknown, "NAME_UNKNOWN", 404),
        (.manifestInvalid, "MANIFEST_INVALID", 400),
        (.nameInvalid, "NAME_INVALID", 400),
        (.digestInvalid, "DIGEST_INVALID", 400),
        (.sizeInvalid, "SIZE_INVALID", 416),
        (.unauthorized, "UNAUTHORIZED", 401),
        (.denied, "DENIED", 403),
        (.unsupported, "UNSUPPORTED", 405),
        (.tooManyRequests, "TOOMANYREQUESTS", 429),
    ])
    func defaultStatuses(_ code: RegistryError.Code, _ raw: String, _ status: Int) throws {
        #expect(code.rawValue == raw)
        #expect(code.defaultStatus == status)
        let error = RegistryError(code, "m")
        #expect(error.status == status)
        #expect(error.description == "\(status) \(raw): m")
        #expect(try Self.entry(error.envelope)["code"] as? String == raw)
    }

    @Test func statusOverride() {
        let error = RegistryError(.manifestUnknown, status: 504, "timeout")
        #expect(error.status == 504)
        #expect(error.code == .manifestUnknown)
        #expect(error.description == "504 MANIFEST_UNKNOWN: timeout")
    }

    /// Only the codes the distribution spec lists ever reach a client (issue 12: RANGE_INVALID,
    /// UNAVAILABLE, UNKNOWN and TAG_INVALID were free-form).
    @Test func everyCodeIsOneTheSpecLists() {
        let spec: Set<String> = [
            "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN",
            "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED",
            "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS",
        ]
        for code in RegistryError.Code.allCases { #expect(spec.contains(code.rawValue), "\(code.rawValue)") }
    }

    @Test func equalityIgnoresHeaders() {
        let a = RegistryError(.sizeInvalid, "r", headers: [("Content-Range", "bytes */10")])
        let b = RegistryError(.sizeInvalid, "r")
        #expect(a == b)
        #expect(a.headers.count == 1)
        #expect(a.headers.first?.0 == "Content-Range")
        #expect(a.headers.first?.1 == "bytes */10")
        #expect(a != RegistryError(.sizeInvalid, "other"))
        #expect(a != RegistryError(.sizeInvalid, status: 400, "r"))
        #expect(a != RegistryError(.sizeInvalid, "r", detail: "d"))
    }
}
