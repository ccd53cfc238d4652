import RegistryModel

/// Repository names and `/v2/` paths: a name that parses round-trips and has only grammar
/// bytes, no traversal and at most 255 bytes; a path's repository part is a substring of it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNames(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let s = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let name = try? RepositoryName(parsing: s) {
        precondition(name.value == s && (try? RepositoryName(parsing: name.description)) == name)
        precondition(s.utf8.count <= RepositoryName.maxLength)
        precondition(s.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || "._-/".utf8.contains($0) })
        precondition(!s.contains("..") && !s.contains("//") && !s.hasPrefix("/") && !s.hasSuffix("/"))
        precondition(name.components.allSatisfy { RepositoryName.isValidComponent($0) })
    }
    if let path = RegistryPath(path: Substring(s)) {
        precondition(s.hasPrefix("/v2"))
        if let name = try? RepositoryName(components: path.repository) {
            precondition(s.contains(name.value))
        }
    }
    return 0
}
