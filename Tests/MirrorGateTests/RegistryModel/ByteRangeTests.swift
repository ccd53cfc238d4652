import RegistryModel
import Testing

@Suite("ByteRange")
struct ByteRangeTests {
    /// The cases of the OCI conformance tests (a 2048-byte blob).
    @Test(arguments: [
        ("bytes=500-1499", UInt64(500)...UInt64(1499)),
        ("bytes=500-", 500...2047),
        ("bytes=-500", 1548...2047),
        ("bytes=2000-5000", 2000...2047),
        ("bytes=0-0", 0...0),
        ("bytes=0-", 0...2047),
        ("bytes=2047-2047", 2047...2047),
        ("bytes=-2048", 0...2047),
        ("bytes=-99999", 0...2047),
        ("bytes=0-2047", 0...2047),
        ("bytes=0-18446744073", 0...2047),
        ("Bytes=500-1499", 500...1499),
        ("  bytes= 500 - 1499  ", 500...1499),
    ] as [(String, ClosedRange<UInt64>)])
    func resolvesOnA2048ByteBlob(_ header: String, _ expected: ClosedRange<UInt64>) throws {
        let range = try #require(try ByteRange.parse(header))
        #expect(range.resolve(length: 2048) == expected)
    }

    @Test func parsesToCases() throws {
        #expect(try ByteRange.parse("bytes=500-1499") == .from(first: 500, last: 1499))
        #expect(try ByteRange.parse("bytes=500-") == .from(first: 500, last: nil))
        #expect(try ByteRange.parse("bytes=-500") == .suffix(length: 500))
    }

    @Test(arguments: ["bytes=500-0", "bytes=1-0", "bytes=abc", "bytes=", "bytes=-", "bytes=a-b", "bytes=1-b", "bytes=--1",
                      "bytes=-1-2", "bytes=+1-2", "bytes=1-+2", "bytes=1.5-2", "bytes=0x10-0x20", "bytes=1",
                      "bytes=99999999999999999999-99999999999999999998", "bytes=18446744073709551616-18446744073709551615"])
    func malformedBytesRangeThrows416(_ header: String) {
        let error = #expect(throws: RegistryError.self) { try ByteRange.parse(header) }
        #expect(error?.code == .sizeInvalid)
        #expect(error?.status == 416)
    }

    /// RFC 9110 §14.1.2 puts no bound on the digits: a last-pos or suffix-length past the end
    /// means "to the end", a first-pos past the end is unsatisfiable (416 with `Content-Range`
    /// from the responder), however many digits. Found by the property suite: numbers of 20
    /// digits, `UInt64.max` among them, were rejected as malformed.
    @Test(arguments: [
        ("bytes=0-99999999999999999999", 0...2047),
        ("bytes=0-18446744073709551615", 0...2047),
        ("bytes=100-000000000000000000000000000000200", 100...200),
        ("bytes=-99999999999999999999", 0...2047),
        ("bytes=-18446744073709551616", 0...2047),
        ("bytes=00000000000000000000000000000001-", 1...2047),
    ] as [(String, ClosedRange<UInt64>)])
    func longNumbersKeepTheirMeaning(_ header: String, _ expected: ClosedRange<UInt64>) throws {
        let range = try #require(try ByteRange.parse(header))
        #expect(range.resolve(length: 2048) == expected)
    }

    @Test(arguments: ["bytes=18446744073709551615-", "bytes=99999999999999999999-", "bytes=99999999999999999999-99999999999999999999"])
    func firstPositionsPastAnyLengthAreUnsatisfiable(_ header: String) throws {
        let range = try #require(try ByteRange.parse(header))
        for length in [0, 1, 2048, UInt64.max - 1, UInt64.max] as [UInt64] {
            #expect(range.resolve(length: length) == nil)
        }
    }

    @Test func unsatisfiableRangeResolvesToNil() throws {
        let range = try #require(try ByteRange.parse("bytes=5000-10000"))
        #expect(range.resolve(length: 2048) == nil)
        let atEnd = try #require(try ByteRange.parse("bytes=2048-"))
        #expect(atEnd.resolve(length: 2048) == nil)
        let emptySuffix = try #require(try ByteRange.parse("bytes=-0"))
        #expect(emptySuffix.resolve(length: 2048) == nil)
    }

    @Test(arguments: ["bytes=0-1,5-6", "bytes=0-1, 5-6", "bytes=-1,0-", "bytes=,"])
    func multipleRangesAreIgnored(_ header: String) throws {
        #expect(try ByteRange.parse(header) == nil)
    }

    @Test(arguments: ["items=0-10", "", "   ", "0-10", "bytes 0-10", "byte=0-10", "none"])
    func otherUnitsAreIgnored(_ header: String) throws {
        #expect(try ByteRange.parse(header) == nil)
    }

    @Test(arguments: ["bytes=0-", "bytes=0-0", "bytes=-1", "bytes=5-10", "bytes=-0"])
    func zeroLengthBlobIsAlwaysUnsatisfiable(_ header: String) throws {
        let range = try #require(try ByteRange.parse(header))
        #expect(range.resolve(length: 0) == nil)
    }

    @Test func oneByteBlob() {
        #expect(ByteRange.from(first: 0, last: nil).resolve(length: 1) == 0...0)
        #expect(ByteRange.from(first: 0, last: 100).resolve(length: 1) == 0...0)
        #expect(ByteRange.suffix(length: 1).resolve(length: 1) == 0...0)
        #expect(ByteRange.suffix(length: 100).resolve(length: 1) == 0...0)
        #expect(ByteRange.from(first: 1, last: nil).resolve(length: 1) == nil)
    }

    @Test func hugeLengthsDoNotOverflow() {
        let max = UInt64.max
        #expect(ByteRange.from(first: max - 1, last: nil).resolve(length: max) == (max - 1)...(max - 1))
        #expect(ByteRange.suffix(length: max).resolve(length: max) == 0...(max - 1))
        #expect(ByteRange.from(first: 0, last: max).resolve(length: 10) == 0...9)
    }

    @Test func errorMessageQuotesHeader() {
        let error = #expect(throws: RegistryError.self) { try ByteRange.parse("bytes=9-1") }
        #expect(error?.message.contains("'bytes=9-1'") == true)
    }
}
