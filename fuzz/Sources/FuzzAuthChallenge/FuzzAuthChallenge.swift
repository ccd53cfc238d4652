import UpstreamParsers

/// `WWW-Authenticate` values: schemes and parameter names are lowercase tokens.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAuthChallenge(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let s = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    func isToken(_ t: String) -> Bool {
        !t.isEmpty && t.utf8.allSatisfy { c in
            (0x30...0x39).contains(c) || (0x61...0x7A).contains(c) || "!#$%&'*+-.^_`|~/".utf8.contains(c)
        }
    }
    for challenge in AuthChallenge.parse(s) {
        precondition(isToken(challenge.scheme))
        precondition(challenge.parameters.keys.allSatisfy(isToken))
    }
    return 0
}
