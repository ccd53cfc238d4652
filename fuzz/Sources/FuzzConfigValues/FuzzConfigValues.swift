import MirrorGateConfig

/// Durations and sizes: no trap on any text; a duration stays within `maxDuration` and formats
/// back to itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigValues(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let s = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let duration = try? ConfigValues.parseDuration(s) {
        precondition(duration >= .zero && duration <= ConfigValues.maxDuration)
        precondition((try? ConfigValues.parseDuration(ConfigValues.format(duration))) == duration)
    }
    _ = try? ConfigValues.parseByteSize(s)
    return 0
}
