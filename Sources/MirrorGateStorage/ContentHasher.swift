import Crypto
import NIOCore
import RegistryModel

/// Hashes content with the algorithm a digest names (never more than one: SHA-512 is four
/// times slower than SHA-256 here, and the other hash would be wasted work).
public struct ContentHasher: Sendable {
    private enum State: Sendable {
        case sha256(SHA256)
        case sha512(SHA512)
    }

    private var state: State
    public let algorithm: RegistryModel.Digest.Algorithm
    /// Bytes hashed so far.
    public private(set) var count: UInt64 = 0

    public init(_ algorithm: RegistryModel.Digest.Algorithm) {
        self.algorithm = algorithm
        switch algorithm {
        case .sha256: state = .sha256(SHA256())
        case .sha512: state = .sha512(SHA512())
        }
    }

    public mutating func update(_ buffer: ByteBuffer) {
        count += UInt64(buffer.readableBytes)
        buffer.withUnsafeReadableBytes { bytes in
            switch state {
            case .sha256(var h):
                h.update(bufferPointer: bytes)
                state = .sha256(h)
            case .sha512(var h):
                h.update(bufferPointer: bytes)
                state = .sha512(h)
            }
        }
    }

    public mutating func update(_ bytes: some Sequence<UInt8>) {
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        update(buffer)
    }

    /// The digest of everything hashed.
    public func finalize() -> RegistryModel.Digest {
        switch state {
        case .sha256(let h): RegistryModel.Digest(algorithm: .sha256, hex: Self.hex(h.finalize()))
        case .sha512(let h): RegistryModel.Digest(algorithm: .sha512, hex: Self.hex(h.finalize()))
        }
    }

    /// The digest of `buffer` with `algorithm`.
    public static func digest(of buffer: ByteBuffer, as algorithm: RegistryModel.Digest.Algorithm) -> RegistryModel.Digest {
        var h = ContentHasher(algorithm)
        h.update(buffer)
        return h.finalize()
    }

    /// The sha256 digest of `buffer`.
    public static func sha256(of buffer: ByteBuffer) -> RegistryModel.Digest {
        digest(of: buffer, as: .sha256)
    }

    private static func hex(_ digest: some Sequence<UInt8>) -> String {
        let table = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(128)
        for byte in digest {
            out.append(table[Int(byte >> 4)])
            out.append(table[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
