import RegistryModel
import Testing

@Suite("Digest")
struct DigestTests {
    static let hex64 = String(repeating: "0123456789abcdef", count: 4)
    static let hex128 = String(repeating: "0123456789abcdef", count: 8)

    @Test func parsesSHA256() throws {
        let digest = try Digest(parsing: "sha256:\(Self.hex64)")
        #expect(digest.algorithm == .sha256)
        #expect(digest.hex == Self.hex64)
        #expect(digest.description == "sha256:\(Self.hex64)")
    }

    @Test func parsesSHA512() throws {
        let digest = try Digest(parsing: "sha512:\(Self.hex128)")
        #expect(digest.algorithm == .sha512)
        #expect(digest.hex == Self.hex128)
        #expect(digest.description == "sha512:\(Self.hex128)")
    }

    @Test func parsesFromSubstring() throws {
        let text = "xxsha256:\(Self.hex64)yy"
        let slice = text.dropFirst(2).dropLast(2)
        let digest = try Digest(parsing: slice)
        #expect(digest == Digest(algorithm: .sha256, hex: Self.hex64))
    }

    @Test func hexLengths() {
        #expect(Digest.Algorithm.sha256.hexLength == 64)
        #expect(Digest.Algorithm.sha512.hexLength == 128)
        #expect(Set(Digest.Algorithm.allCases) == [.sha256, .sha512])
    }

    @Test(arguments: [
        "",
        "sha256",
        Self.hex64,  // no colon
        "sha256:",
        "sha256:\(Self.hex64.dropLast())",  // 63 characters
        "sha256:\(Self.hex64)0",  // 65 characters
        "sha256:\(Self.hex64.uppercased())",  // uppercase hex
        "sha256:\(Self.hex64.dropLast())A",
        "sha256:\(Self.hex64.dropLast())g",  // non-hex
        "sha256:\(Self.hex64.dropLast())/",
        "sha256:../../../../../../../../../../../../../../../../../../../etc/passwd/x",
        "sha256:\(String(repeating: "z", count: 64))",
        "sha256:\(String(repeating: "%2e", count: 21))x",
        "sha256: \(Self.hex64.dropLast())",
        "SHA256:\(Self.hex64)",  // algorithm is case sensitive
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "sha384:\(Self.hex128.prefix(96))",
        "sha512:\(Self.hex64)",  // sha512 with a sha256-sized hex
        "sha256:\(Self.hex128)",  // sha256 with a sha512-sized hex
        ":\(Self.hex64)",
        "sha256:\(Self.hex64):",
        "sha256::\(Self.hex64.dropLast())",
        "sha256:\(Self.hex64.dropLast())\u{00E9}",  // non-ASCII
    ])
    func rejectsInvalid(_ input: String) {
        let error = #expect(throws: RegistryError.self) { try Digest(parsing: input) }
        #expect(error?.code == .digestInvalid)
        #expect(error?.status == 400)
    }

    @Test func errorMessageQuotesAndTruncatesHostileInput() {
        let long = String(repeating: "x", count: 500)
        let error = #expect(throws: RegistryError.self) { try Digest(parsing: long) }
        let message = error?.message ?? ""
        #expect(message.contains("'" + String(repeating: "x", count: 80) + "…'"))
        #expect(!message.contains(String(repeating: "x", count: 81)))
    }

    @Test func unsupportedAlgorithmIsNamed() {
        let error = #expect(throws: RegistryError.self) { try Digest(parsing: "md5:d41d8cd98f00b204e9800998ecf8427e") }
        #expect(error?.message.contains("md5") == true)
    }

    @Test func equalityAndHashing() throws {
        let a = try Digest(parsing: "sha256:\(Self.hex64)")
        let b = Digest(algorithm: .sha256, hex: Self.hex64)
        let c = Digest(algorithm: .sha512, hex: Self.hex64)
        #expect(a == b)
        #expect(a != c)
        #expect(Set([a, b, c]).count == 2)
    }
}
