import Crypto
import MirrorGateStorage
import NIOCore
import RegistryModel
import Testing

@Suite("ContentHasher")
struct ContentHasherTests {
    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let table = Array("0123456789abcdef")
        var out = ""
        for byte in bytes {
            out.append(table[Int(byte >> 4)])
            out.append(table[Int(byte & 0x0F)])
        }
        return out
    }

    static func randomBytes(_ count: Int, using rng: inout some RandomNumberGenerator) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
    }

    @Test func knownVectors() {
        let empty256 = ContentHasher(.sha256).finalize()
        #expect(empty256.description == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let empty512 = ContentHasher(.sha512).finalize()
        #expect(empty512.description == "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e")

        var abc = ContentHasher(.sha256)
        abc.update(Array("abc".utf8))
        #expect(abc.finalize().hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(abc.count == 3)
    }

    @Test func digestsParseBack() throws {
        var hasher = ContentHasher(.sha512)
        hasher.update(Array("x".utf8))
        let digest = hasher.finalize()
        #expect(try RegistryModel.Digest(parsing: digest.description) == digest)
        #expect(digest.algorithm == .sha512)
        #expect(hasher.algorithm == .sha512)
    }

    @Test(arguments: [0, 1, 55, 56, 63, 64, 65, 127, 128, 129, 1000, 65_537, 1 << 20])
    func matchesSwiftCrypto(_ size: Int) {
        var rng = SystemRandomNumberGenerator()
        let data = Self.randomBytes(size, using: &rng)

        var h256 = ContentHasher(.sha256)
        h256.update(data)
        #expect(h256.finalize() == RegistryModel.Digest(algorithm: .sha256, hex: Self.hex(SHA256.hash(data: data))))
        #expect(h256.count == UInt64(size))

        var h512 = ContentHasher(.sha512)
        h512.update(data)
        #expect(h512.finalize() == RegistryModel.Digest(algorithm: .sha512, hex: Self.hex(SHA512.hash(data: data))))
        #expect(h512.count == UInt64(size))

        #expect(ContentHasher.sha256(of: ByteBuffer(bytes: data)).hex == Self.hex(SHA256.hash(data: data)))
    }

    @Test func chunkedUpdatesMatchOneShot() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let data = Self.randomBytes(Int.random(in: 0...20_000, using: &rng), using: &rng)
            for algorithm in RegistryModel.Digest.Algorithm.allCases {
                var chunked = ContentHasher(algorithm)
                var offset = 0
                while offset < data.count {
                    let n = min(Int.random(in: 0...4096, using: &rng), data.count - offset)
                    var buffer = ByteBuffer(bytes: data[offset..<(offset + n)])
                    // Bytes before the reader index are not content.
                    if n > 0, Bool.random(using: &rng) {
                        buffer = ByteBuffer(bytes: [0xFF, 0xFE] + data[offset..<(offset + n)])
                        buffer.moveReaderIndex(forwardBy: 2)
                    }
                    chunked.update(buffer)
                    offset += n
                }
                let expected: String = switch algorithm {
                case .sha256: Self.hex(SHA256.hash(data: data))
                case .sha512: Self.hex(SHA512.hash(data: data))
                }
                #expect(chunked.finalize().hex == expected)
                #expect(chunked.count == UInt64(data.count))
            }
        }
    }

    @Test func finalizeDoesNotConsume() {
        var hasher = ContentHasher(.sha256)
        hasher.update(Array("ab".utf8))
        let first = hasher.finalize()
        #expect(hasher.finalize() == first)
        hasher.update(Array("c".utf8))
        #expect(hasher.finalize().hex == Self.hex(SHA256.hash(data: Array("abc".utf8))))
    }

    @Test func copiesAreIndependent() {
        var a = ContentHasher(.sha256)
        a.update(Array("a".utf8))
        var b = a
        b.update(Array("b".utf8))
        #expect(a.finalize().hex == Self.hex(SHA256.hash(data: Array("a".utf8))))
        #expect(b.finalize().hex == Self.hex(SHA256.hash(data: Array("ab".utf8))))
        #expect(a.count == 1)
        #expect(b.count == 2)
    }
}
