import Foundation
import PropertyBased
import Testing

/// The libFuzzer targets of the header parsers (`fuzz/Sources/Fuzz{AuthChallenge, RateLimit,
/// RetryAfter, ContentRange, Range, Accept}`), run in the property suite: the same oracles
/// (``HeaderParserChecks``, which the fuzz targets link) on each target's seeds
/// (`fuzz/seeds/TARGET/`) and on libFuzzer-style mutations of them that splice in the
/// target's dictionary (`fuzz/dicts/TARGET.dict`) and hostile pieces. `make test` thus runs a
/// bounded fuzzing pass of every header parser without the fuzzer (`scripts/fuzz` goes deeper).
@Suite("Properties: header-parser fuzz targets")
struct HeaderParserFuzzProperties {
    static let fuzzRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // Properties
        .deletingLastPathComponent()  // MirrorGateTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // package root
        .appending(path: "fuzz")

    static func seeds(_ target: String) throws -> [[UInt8]] {
        let directory = fuzzRoot.appending(path: "seeds/\(target)")
        return try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .sorted { $0.path < $1.path }
            .map { Array(try Data(contentsOf: $0)) }
    }

    /// The tokens of a libFuzzer dictionary: one `"…"` per line (`\\`, `\"` and `\xNN`
    /// escapes), `#` comments.
    static func dictionary(_ target: String) -> [[UInt8]] {
        guard let text = try? String(contentsOf: fuzzRoot.appending(path: "dicts/\(target).dict"), encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line -> [UInt8]? in
            guard let open = line.firstIndex(of: "\""), let close = line.lastIndex(of: "\""), open < close, !line.hasPrefix("#") else { return nil }
            let body = Array(line[line.index(after: open)..<close].utf8)
            var out: [UInt8] = []
            var i = 0
            while i < body.count {
                if body[i] == 0x5C, i + 1 < body.count {
                    if body[i + 1] == 0x78, i + 3 < body.count, let byte = UInt8(String(decoding: body[(i + 2)...(i + 3)], as: UTF8.self), radix: 16) {
                        out.append(byte)
                        i += 4
                        continue
                    }
                    out.append(body[i + 1])
                    i += 2
                    continue
                }
                out.append(body[i])
                i += 1
            }
            return out
        }
    }

    /// libFuzzer's mutations, roughly: dictionary tokens inserted or written over, bytes
    /// inserted, erased, flipped or set to interesting values, ranges repeated, another seed
    /// spliced in, and the hostile pieces of ``HostileInput``.
    static func mutate(_ seeds: [[UInt8]], _ dictionary: [[UInt8]], _ rng: inout HostileInput.RNG) -> [UInt8] {
        var data = seeds.isEmpty || HostileInput.int(&rng, 0...9) == 0 ? [] : HostileInput.pick(seeds, &rng)
        let tokens = dictionary + HostileInput.commonPieces.map { Array($0.utf8) }
        for _ in 0..<HostileInput.int(&rng, 1...8) {
            let at = HostileInput.int(&rng, 0...data.count)
            switch HostileInput.int(&rng, 0...8) {
            case 0, 1: data.insert(contentsOf: HostileInput.pick(tokens, &rng), at: at)
            case 2:
                let token = HostileInput.pick(tokens, &rng)
                data.replaceSubrange(at..<min(data.count, at + token.count), with: token)
            case 3: data.insert(UInt8.random(in: 0...255, using: &rng), at: at)
            case 4 where !data.isEmpty:
                let start = min(at, data.count - 1)
                data.removeSubrange(start..<min(data.count, start + HostileInput.int(&rng, 1...8)))
            case 5 where at < data.count: data[at] ^= 1 << UInt8(HostileInput.int(&rng, 0...7))
            case 6 where at < data.count: data[at] = HostileInput.pick([0, 0xFF, 0x7F, 0x80, 0x30, 0x39, 0x20, 0x09, 0x0A, 0x2C, 0x3B, 0x3D, 0x22], &rng)
            case 7 where !data.isEmpty:
                let start = HostileInput.int(&rng, 0...(data.count - 1))
                let piece = data[start..<min(data.count, start + HostileInput.int(&rng, 1...16))]
                data.insert(contentsOf: Array(repeating: Array(piece), count: HostileInput.int(&rng, 1...4)).joined(), at: at)
            default:
                if let other = seeds.randomElement(using: &rng) {
                    data.insert(contentsOf: other.prefix(HostileInput.int(&rng, 0...other.count)), at: at)
                }
            }
            if data.count > 4096 { data.removeLast(data.count - 4096) }
        }
        return data
    }

    @Test(arguments: HeaderParserChecks.targets.keys.sorted())
    func seedsAndTheirMutationsPassTheTargetsChecks(_ target: String) async throws {
        let check = try #require(HeaderParserChecks.targets[target])
        let seeds = try Self.seeds(target)
        #expect(!seeds.isEmpty, "no seeds in fuzz/seeds/\(target)")
        #expect(!Self.dictionary(target).isEmpty || target == "FuzzAccept", "no dictionary fuzz/dicts/\(target).dict")
        for seed in seeds {
            let violations = check(seed)
            #expect(violations.isEmpty, "\(target) seed \(String(decoding: seed, as: UTF8.self).debugDescription): \(violations)")
        }
        let dictionary = Self.dictionary(target)
        await propertyCheck(count: HostileInput.scaled(3000), input: Generator { rng in Self.mutate(seeds, dictionary, &rng) }) { input in
            let violations = check(input)
            #expect(violations.isEmpty, "\(target) input \(input): \(violations)")
        }
    }

    @Test func dictionariesUnescape() throws {
        let tokens = Self.dictionary("FuzzRateLimit")
        #expect(tokens.contains(Array(";w=".utf8)))
        #expect(tokens.contains([0x0A]))
        #expect(tokens.contains([0x09]))
    }
}
