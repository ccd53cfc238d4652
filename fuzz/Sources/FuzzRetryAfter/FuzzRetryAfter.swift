import HeaderChecks

/// `Retry-After` values: traps on any violation of `HeaderParserChecks.retryAfter`, the oracle the
/// property suite runs on this target's seeds and their mutations too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRetryAfter(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let violations = HeaderParserChecks.retryAfter(Array(UnsafeBufferPointer(start: data, count: size)))
    precondition(violations.isEmpty, violations.joined(separator: "; "))
    return 0
}
