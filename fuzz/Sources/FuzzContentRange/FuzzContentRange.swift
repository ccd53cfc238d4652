import HeaderChecks

/// `Content-Range` values: traps on any violation of `HeaderParserChecks.contentRange`, the oracle
/// the property suite runs on this target's seeds and their mutations too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzContentRange(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let violations = HeaderParserChecks.contentRange(Array(UnsafeBufferPointer(start: data, count: size)))
    precondition(violations.isEmpty, violations.joined(separator: "; "))
    return 0
}
