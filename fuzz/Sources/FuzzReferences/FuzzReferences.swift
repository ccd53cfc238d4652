import RegistryModel

/// Tags and digests: whatever parses round-trips through its description and fits the grammar.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReferences(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let s = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do throws(RegistryError) {
        let reference = try Reference(parsing: s)
        precondition(reference.description == s && (try? Reference(parsing: reference.description)) == reference)
        switch reference {
        case .tag(let tag):
            precondition(tag.utf8.count <= Reference.maxTagLength && tag.utf8.allSatisfy { $0 < 0x80 } && !tag.contains(":"))
        case .digest(let digest):
            precondition(digest.hex.utf8.count == digest.algorithm.hexLength)
        }
    } catch {
        precondition(error.code == .tagInvalid || error.code == .digestInvalid)
    }
    do throws(RegistryError) {
        let digest = try Digest(parsing: s)
        precondition(digest.description == s)
        precondition(digest.hex.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
    } catch {
        precondition(error.code == .digestInvalid && error.message.count < 200)
    }
    return 0
}
