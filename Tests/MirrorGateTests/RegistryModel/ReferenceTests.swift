import RegistryModel
import Testing

@Suite("Reference")
struct ReferenceTests {
    static let hex64 = String(repeating: "ab", count: 32)

    @Test(arguments: [
        "latest",
        "3.19",
        "v1.2.3-rc.1",
        "_underscore",
        "UPPER_case",
        "a",
        "0",
        "a-",
        "a.",
        String(repeating: "t", count: 128),
    ])
    func acceptsValidTags(_ tag: String) throws {
        #expect(try Reference(parsing: tag) == .tag(tag))
        #expect(try Reference.validatedTag(tag) == tag)
        #expect(try Reference(parsing: tag).description == tag)
        #expect(try Reference(parsing: tag).digest == nil)
    }

    @Test(arguments: [
        "",
        String(repeating: "t", count: 129),
        "a/b",
        "../etc",
        "/latest",
        ".hidden",
        "-dash",
        "a b",
        "a%2fb",
        "caf\u{00E9}",
        "a\nb",
        "a+b",
        "a@b",
    ])
    func rejectsInvalidTags(_ tag: String) {
        let error = #expect(throws: RegistryError.self) { try Reference(parsing: tag) }
        // A manifest that cannot exist is one that does not: 404, as the spec requires.
        #expect(error?.code == .manifestUnknown)
        #expect(error?.status == 404)
        let error2 = #expect(throws: RegistryError.self) { try Reference.validatedTag(tag) }
        #expect(error2?.code == .manifestUnknown)
    }

    @Test func maxTagLength() {
        #expect(Reference.maxTagLength == 128)
    }

    @Test func parsesDigestReference() throws {
        let reference = try Reference(parsing: "sha256:\(Self.hex64)")
        let digest = Digest(algorithm: .sha256, hex: Self.hex64)
        #expect(reference == .digest(digest))
        #expect(reference.digest == digest)
        #expect(reference.description == "sha256:\(Self.hex64)")
    }

    @Test(arguments: [
        "sha256:short",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "latest:tag",
        "sha256:\(String(repeating: "AB", count: 32))",
        ":",
    ])
    func anythingWithAColonIsADigest(_ input: String) {
        let error = #expect(throws: RegistryError.self) { try Reference(parsing: input) }
        #expect(error?.code == .digestInvalid)
        #expect(error?.status == 400)
    }
}
