import RegistryModel

/// `Range` headers: the first 8 bytes are a representation length, the rest the header. A
/// resolved range lies inside the representation; errors are 416 RANGE_INVALID.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRange(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    var length: UInt64 = 0
    for b in bytes.prefix(8) { length = length << 8 | UInt64(b) }
    let header = String(decoding: bytes.dropFirst(8), as: UTF8.self)
    do throws(RegistryError) {
        guard let range = try ByteRange.parse(header) else { return 0 }
        for n in [length, 0, 1, UInt64.max] {
            if let resolved = range.resolve(length: n) {
                precondition(resolved.lowerBound <= resolved.upperBound && resolved.upperBound < n)
            }
        }
    } catch {
        precondition(error.code == .rangeInvalid && error.status == 416)
    }
    return 0
}
