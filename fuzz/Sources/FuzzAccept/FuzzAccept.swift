import HeaderChecks

/// `Accept` values, one per line: traps on any violation of `HeaderParserChecks.accept`, the oracle
/// the property suite runs on this target's seeds and their mutations too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAccept(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let violations = HeaderParserChecks.accept(Array(UnsafeBufferPointer(start: data, count: size)))
    precondition(violations.isEmpty, violations.joined(separator: "; "))
    return 0
}
