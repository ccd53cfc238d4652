import HeaderChecks

/// 8 bytes of representation length, then a `Range` value: traps on any violation of
/// `HeaderParserChecks.range`, the oracle the property suite runs on this target's seeds and their
/// mutations too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRange(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let violations = HeaderParserChecks.range(Array(UnsafeBufferPointer(start: data, count: size)))
    precondition(violations.isEmpty, violations.joined(separator: "; "))
    return 0
}
