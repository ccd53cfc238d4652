import RegistryModel

/// `Accept` headers (one per input line): accepted types are trimmed, non-empty, without
/// list or parameter separators.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAccept(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let s = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let negotiation = ManifestNegotiation(acceptHeaders: s.split(separator: "\n").map(String.init))
    for type in negotiation.accepted {
        precondition(!type.isEmpty && !type.unicodeScalars.contains(",") && !type.unicodeScalars.contains(";"))
        precondition(type.first != " " && type.last != " " && type.first != "\t" && type.last != "\t")
    }
    for mediaType in [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest] {
        _ = negotiation.decide(mediaType: mediaType, requestedByTag: size % 2 == 0)
    }
    return 0
}
