import HeaderChecks

/// `ratelimit-limit`, a newline, `ratelimit-remaining`: traps on any violation of
/// `HeaderParserChecks.rateLimit`, the oracle the property suite runs on this target's seeds and
/// their mutations too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRateLimit(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let violations = HeaderParserChecks.rateLimit(Array(UnsafeBufferPointer(start: data, count: size)))
    precondition(violations.isEmpty, violations.joined(separator: "; "))
    return 0
}
