import PropertyBased
import RegistryModel
import Testing

/// Property checks of the RegistryModel parsers against hostile input and against independent
/// oracles: the distribution grammar as a `Regex` (matched scalar by scalar) and RFC 9110's
/// range rules evaluated on decimal strings of any length.
@Suite("Properties: RegistryModel")
struct RegistryModelProperties {
    // MARK: Oracles

    static func matches(_ regex: Regex<Substring>, _ s: String) -> Bool {
        (try? regex.matchingSemantics(.unicodeScalar).wholeMatch(in: s)) != nil
    }

    static func isValidName(_ s: String) -> Bool {
        s.utf8.count <= 255 && matches(#/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*/#, s)
    }

    static func isValidTag(_ s: String) -> Bool {
        matches(#/[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}/#, s)
    }

    static func isValidDigest(_ s: String) -> Bool {
        matches(#/sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}/#, s)
    }

    // MARK: Repository names

    static let nameExtra = [
        "/", "a/b", "library/", "/ubuntu", "a.b", "a__b", "a___b", "a-_b", "a--b", "a._b", "_a", "a_", "-a", "a-",
        String(repeating: "a", count: 255), String(repeating: "ab/", count: 90),
    ]

    @Test func anyStringIsANameExactlyWhenTheGrammarSaysSo() async {
        await propertyCheck(count: HostileInput.scaled(3000), input: HostileInput.strings(extra: Self.nameExtra)) { s in
            let expected = Self.isValidName(s)
            do throws(RegistryError) {
                let name = try RepositoryName(parsing: s)
                #expect(expected, "accepted \(s.debugDescription)")
                #expect(name.description == s)
                #expect(try RepositoryName(parsing: name.description) == name)
                #expect(name.components.joined(separator: "/") == s)
            } catch {
                #expect(!expected, "rejected \(s.debugDescription): \(error)")
                #expect(error.code == .nameInvalid)
                #expect(error.status == 400)
            }
        }
    }

    @Test func generatedNamesAreAcceptedAndRoundTrip() async {
        await propertyCheck(count: HostileInput.scaled(1000), input: Generator { rng in HostileInput.repositoryName(&rng) }) { s in
            #expect(Self.isValidName(s), "generator produced \(s.debugDescription)")
            let name = try RepositoryName(parsing: s)
            #expect(name.value == s)
            #expect(try RepositoryName(components: name.components) == name)
        }
    }

    /// Traversal and separator tricks spliced anywhere into a valid name never make it valid.
    static let traversal = ["..", "%2e%2e", "%2E%2E", "%2f", "//", "\0", "\\", "/..", "../", "/./", "..%2f", "\u{301}", " ", "%"]

    @Test func traversalIsAlwaysRejected() async {
        let input = Generator { rng in
            let name = HostileInput.repositoryName(&rng)
            let piece = HostileInput.pick(Self.traversal, &rng)
            let offset = HostileInput.int(&rng, 0...name.count)
            let at = name.index(name.startIndex, offsetBy: offset)
            return String(name[..<at]) + piece + String(name[at...])
        }
        await propertyCheck(count: HostileInput.scaled(1000), input: input) { s in
            #expect(throws: RegistryError.self, "accepted \(s.debugDescription)") { try RepositoryName(parsing: s) }
            // Leading and trailing slashes too.
            #expect(throws: RegistryError.self) { try RepositoryName(parsing: "/" + s) }
            #expect(throws: RegistryError.self) { try RepositoryName(parsing: s + "/") }
        }
    }

    @Test func namesLongerThan255BytesAreRejected() async {
        let input = Generator { rng in
            var name = HostileInput.repositoryName(&rng)
            while name.utf8.count <= 255 { name += "/" + HostileInput.repositoryName(&rng) }
            return name
        }
        await propertyCheck(count: HostileInput.scaled(300), input: input) { s in
            let error = #expect(throws: RegistryError.self) { try RepositoryName(parsing: s) }
            #expect(error?.code == .nameInvalid)
            #expect(error?.message.contains("255") == true)
        }
    }

    // MARK: References and digests

    static let referenceExtra = [
        "sha256:", "sha512:", "sha384:", "SHA256:", ":", "_", ".", "-", "latest", "v1.0.0-rc.1",
        String(repeating: "0123456789abcdef", count: 4), String(repeating: "0123456789abcdef", count: 8),
        String(repeating: "0123456789ABCDEF", count: 4), String(repeating: "a", count: 127), String(repeating: "a", count: 128),
    ]

    @Test func anyStringIsAReferenceExactlyWhenTheGrammarSaysSo() async {
        await propertyCheck(count: HostileInput.scaled(3000), input: HostileInput.strings(extra: Self.referenceExtra)) { s in
            let expected = Self.isValidTag(s) || Self.isValidDigest(s)
            do throws(RegistryError) {
                let reference = try Reference(parsing: s)
                #expect(expected, "accepted \(s.debugDescription)")
                #expect(reference.description == s)
                #expect(try Reference(parsing: reference.description) == reference)
                #expect((reference.digest != nil) == Self.isValidDigest(s))
            } catch {
                #expect(!expected, "rejected \(s.debugDescription): \(error)")
                // A malformed digest is bad input (400); a string that is no tag names a manifest
                // that cannot exist (404).
                #expect((error.code == .manifestUnknown && error.status == 404) || (error.code == .digestInvalid && error.status == 400), "\(error)")
            }
        }
    }

    @Test func anyStringIsADigestExactlyWhenTheGrammarSaysSo() async {
        await propertyCheck(count: HostileInput.scaled(3000), input: HostileInput.strings(extra: Self.referenceExtra)) { s in
            let expected = Self.isValidDigest(s)
            do throws(RegistryError) {
                let digest = try Digest(parsing: s)
                #expect(expected, "accepted \(s.debugDescription)")
                #expect(digest.description == s)
                #expect(digest.hex.utf8.count == digest.algorithm.hexLength)
            } catch {
                #expect(!expected, "rejected \(s.debugDescription): \(error)")
                #expect(error.code == .digestInvalid)
                // Error messages quote at most 80 characters of the input.
                #expect(error.message.count <= 200)
            }
        }
    }

    @Test func generatedTagsAndDigestsAreAcceptedAndRoundTrip() async {
        let input = Generator { rng in HostileInput.int(&rng, 0...1) == 0 ? HostileInput.tag(&rng) : HostileInput.digest(&rng) }
        await propertyCheck(count: HostileInput.scaled(1000), input: input) { s in
            let reference = try Reference(parsing: s)
            #expect(reference.description == s)
            if s.contains(":") {
                #expect(reference == .digest(try Digest(parsing: s)))
            } else {
                #expect(reference == .tag(s))
            }
        }
    }

    // MARK: Image references (`mirrorgate warm`)

    static let imageExtra = ["/", ":", "@", "docker.io/", "localhost/", "localhost:5000/", "ghcr.io/", "Registry/", "index.docker.io/",
                             "a.b:5000/", "alpine", ":latest", "@sha256:" + String(repeating: "ab", count: 32), "library/"]

    @Test func imageReferencesRoundTripThroughTheirDescription() async {
        await propertyCheck(count: HostileInput.scaled(3000), input: HostileInput.strings(extra: Self.imageExtra, maxParts: 10)) { s in
            do throws(RegistryError) {
                let image = try ImageReference(parsing: s)
                #expect(try ImageReference(parsing: image.description) == image, "\(s.debugDescription) → \(image.description)")
                #expect(Self.isValidName(image.repository.value))
            } catch {
                #expect([.nameInvalid, .manifestUnknown, .digestInvalid].contains(error.code))
            }
        }
    }

    // MARK: Ranges

    static let lengths: [UInt64] = [0, 1, 2, 2047, 2048, UInt64.max - 1, UInt64.max, 1 << 32, 1 << 63]

    static func length(_ rng: inout HostileInput.RNG) -> UInt64 {
        switch HostileInput.int(&rng, 0...3) {
        case 0: HostileInput.pick(lengths, &rng)
        case 1: UInt64.random(in: 0...UInt64.max, using: &rng)
        default: UInt64.random(in: 0...5000, using: &rng)
        }
    }

    static let rangeExtra = ["bytes=", "Bytes=", "BYTES=", "bytes =", "items=", "bytes=-", "-", ",", " ", "0-", "-0", "bytes=0-"]

    /// Whatever the header, a resolved range lies inside the representation.
    @Test func anyRangeHeaderResolvesInsideTheBlob() async {
        let input = Generator { rng in (HostileInput.string(&rng, extra: Self.rangeExtra, maxParts: 10), Self.length(&rng)) }
        await propertyCheck(count: HostileInput.scaled(3000), input: input) { header, length in
            do throws(RegistryError) {
                guard let range = try ByteRange.parse(header) else { return }
                if let resolved = range.resolve(length: length) {
                    #expect(resolved.lowerBound <= resolved.upperBound)
                    #expect(resolved.upperBound < length)
                }
            } catch {
                #expect(error.code == .sizeInvalid)
                #expect(error.status == 416)
            }
        }
    }

    /// A decimal string of any length, compared without converting it.
    struct Decimal: Comparable, CustomStringConvertible {
        let digits: String  // no leading zeros; "" is zero
        init(_ text: String) { digits = String(text.drop { $0 == "0" }) }
        init(_ n: UInt64) { self.init(String(n)) }
        var description: String { digits.isEmpty ? "0" : digits }
        static func < (a: Decimal, b: Decimal) -> Bool {
            a.digits.count != b.digits.count ? a.digits.count < b.digits.count : a.digits < b.digits
        }
        /// The value if it fits in a UInt64.
        var uint64: UInt64? { UInt64(description) }
    }

    /// `bytes=first-last`, `bytes=first-`, `bytes=-suffix` with numbers of any length, against
    /// RFC 9110 §14.1.2: a last-pos at or past the end means "to the end", a suffix longer than
    /// the representation means "all of it", a first-pos at or past the end is unsatisfiable
    /// (416 with `Content-Range: bytes */length`), and only `last < first` is invalid.
    @Test func rangesResolveAsRFC9110Says() async {
        let input = Generator { rng in
            let form = HostileInput.int(&rng, 0...2)
            let first = form == 2 ? nil : HostileInput.decimal(&rng)
            let last = form == 1 ? nil : HostileInput.decimal(&rng)
            return (first, last, Self.length(&rng))
        }
        await propertyCheck(count: HostileInput.scaled(3000), input: input) { (first: String?, last: String?, length: UInt64) in
            let header = "bytes=\(first ?? "")-\(last ?? "")"
            let n = Decimal(length)
            if let first, let last, Decimal(last) < Decimal(first) {
                #expect(throws: RegistryError.self, "\(header)") { try ByteRange.parse(header) }
                return
            }
            let parsed: ByteRange?
            do throws(RegistryError) {
                parsed = try ByteRange.parse(header)
            } catch {
                Issue.record("\(header) is a valid range but parse threw \(error)")
                return
            }
            guard let range = parsed else {
                Issue.record("\(header) parsed as no range")
                return
            }
            let resolved = range.resolve(length: length)
            if let first {
                let f = Decimal(first)
                guard f < n else {
                    #expect(resolved == nil, "\(header) on \(length) bytes")
                    return
                }
                let end: UInt64 = last.map { Decimal($0) < n ? Decimal($0).uint64! : length - 1 } ?? length - 1
                #expect(resolved == f.uint64!...end, "\(header) on \(length) bytes")
            } else {
                let s = Decimal(last!)
                guard s > Decimal(0), length > 0 else {
                    #expect(resolved == nil, "\(header) on \(length) bytes")
                    return
                }
                let start: UInt64 = s < n ? length - s.uint64! : 0
                #expect(resolved == start...(length - 1), "\(header) on \(length) bytes")
            }
        }
    }

    // MARK: Paths

    /// Names that use the words the path parser looks for.
    static func trickyName(_ rng: inout HostileInput.RNG) -> String {
        let words = ["tags", "list", "blobs", "uploads", "manifests", "referrers", "v2"]
        return (0..<HostileInput.int(&rng, 1...5)).map { _ in
            HostileInput.int(&rng, 0...1) == 0 ? HostileInput.pick(words, &rng) : HostileInput.nameComponent(&rng)
        }.joined(separator: "/")
    }

    @Test func routesSplitAtTheEndpointAndKeepTheName() async {
        let input = Generator { rng in
            (Self.trickyName(&rng), HostileInput.int(&rng, 0...3), HostileInput.tag(&rng), HostileInput.digest(&rng), HostileInput.int(&rng, 0...1) == 0)
        }
        await propertyCheck(count: HostileInput.scaled(2000), input: input) { (name: String, kind: Int, tag: String, digest: String, slash: Bool) in
            let (suffix, endpoint): (String, RegistryPath.Endpoint) = switch kind {
            case 0: ("manifests/\(tag)", .manifest(tag))
            case 1: ("blobs/\(digest)", .blob(digest))
            case 2: ("referrers/\(digest)", .referrers(digest))
            default: ("tags/list", .tagsList)
            }
            let path = "/v2/\(name)/\(suffix)" + (slash ? "/" : "")
            let parsed = try #require(RegistryPath(path: Substring(path)), "\(path)")
            #expect(parsed.endpoint == endpoint, "\(path)")
            #expect(parsed.repository.joined(separator: "/") == name, "\(path)")
            #expect(try RepositoryName(components: parsed.repository).value == name)
        }
    }

    @Test func anyPathParsesToAValidatableNameOrNothing() async {
        let extra = ["/v2/", "/v2", "manifests/", "blobs/", "/tags/list", "/blobs/uploads/", "_catalog", "referrers/"]
        let input = Generator { rng in
            (HostileInput.int(&rng, 0...3) == 0 ? "" : "/v2/") + HostileInput.string(&rng, extra: extra)
        }
        await propertyCheck(count: HostileInput.scaled(3000), input: input) { path in
            guard let parsed = RegistryPath(path: Substring(path)) else { return }
            #expect(path.hasPrefix("/v2"))
            do throws(RegistryError) {
                let name = try RepositoryName(components: parsed.repository)
                #expect(path.contains(name.value))
                #expect(Self.isValidName(name.value))
            } catch {
                #expect(error.code == .nameInvalid)
            }
        }
    }

    // MARK: Accept

    @Test func acceptListsYieldExactlyTheirMediaTypes() async {
        let input = Generator { rng in
            (0..<HostileInput.int(&rng, 0...6)).map { _ in
                HostileInput.run(of: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-", 1...12, &rng) + "/"
                    + HostileInput.run(of: "abcdefghijklmnopqrstuvwxyz0123456789.+-", 1...30, &rng)
            }
        }
        await propertyCheck(count: HostileInput.scaled(1000), input: input) { types in
            let header = types.enumerated().map { i, type in
                [" ", "", "\t"][i % 3] + type + (i % 2 == 0 ? ";q=0.\(i)" : "") + [" ", ""][i % 2]
            }.joined(separator: ",")
            let negotiation = ManifestNegotiation(acceptHeaders: [header])
            #expect(negotiation.accepted == Set(types.map { $0.lowercased() }), "\(header)")
        }
    }

    @Test func anyAcceptHeaderYieldsTrimmedNonEmptyTypes() async {
        await propertyCheck(count: HostileInput.scaled(2000), input: HostileInput.strings(extra: [",", ";", "q=1", "application/json", "*/*"]).array(of: 0...3)) { headers in
            let negotiation = ManifestNegotiation(acceptHeaders: headers)
            for type in negotiation.accepted {
                #expect(!type.isEmpty)
                #expect(!type.unicodeScalars.contains(",") && !type.unicodeScalars.contains(";"), "\(headers)")
                #expect(type.first != " " && type.last != " " && type.first != "\t" && type.last != "\t")
            }
            _ = negotiation.decide(mediaType: "application/vnd.oci.image.index.v1+json", requestedByTag: true)
        }
    }
}
