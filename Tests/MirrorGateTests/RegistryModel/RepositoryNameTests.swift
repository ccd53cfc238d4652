import RegistryModel
import Testing

@Suite("RepositoryName")
struct RepositoryNameTests {
    @Test(arguments: [
        "a",
        "alpine",
        "library/alpine",
        "a.b",
        "a_b",
        "a__b",
        "a-b",
        "a---b",
        "a0/b1/c2",
        "my-org/my.app_v2__x---y",
        "0",
        "ghcr.io/org/app",  // a host-looking first component is a valid component
        "a/b/c/d/e/f/g/h",
    ])
    func acceptsValid(_ name: String) throws {
        let parsed = try RepositoryName(parsing: name)
        #expect(parsed.value == name)
        #expect(parsed.description == name)
    }

    @Test(arguments: [
        "",
        "/",
        "../etc",
        "..",
        ".",
        "a/../b",
        "a/./b",
        "%2e%2e",
        "%2e%2e/etc",
        "a%2fb",
        "A",
        "Library/alpine",
        "alpinE",
        "a/",  // trailing slash
        "/a",  // leading slash
        "a//b",
        "a___b",
        "a.-b",
        "a-.b",
        "a..b",
        "a._b",
        "-a",
        "a-",
        ".a",
        "a.",
        "_a",
        "a_",
        "a b",
        "a\tb",
        "a\nb",
        "a\0b",
        "a:b",
        "a@b",
        "a\\b",
        "caf\u{00E9}",
        "a/-b",
    ])
    func rejectsInvalid(_ name: String) {
        let error = #expect(throws: RegistryError.self) { try RepositoryName(parsing: name) }
        #expect(error?.code == .nameInvalid)
        #expect(error?.status == 400)
    }

    @Test func lengthLimit() throws {
        let max = String(repeating: "a", count: 255)
        #expect(try RepositoryName(parsing: max).value == max)
        let components = Array(repeating: "ab", count: 85).joined(separator: "/")  // 85*2 + 84 = 254
        #expect(try RepositoryName(parsing: components).components.count == 85)

        let tooLong = String(repeating: "a", count: 256)
        let error = #expect(throws: RegistryError.self) { try RepositoryName(parsing: tooLong) }
        #expect(error?.code == .nameInvalid)
        #expect(error?.status == 400)

        let tooLongWithSlashes = Array(repeating: "abc", count: 64).joined(separator: "/")  // 64*3 + 63 = 255
        #expect(throws: Never.self) { try RepositoryName(parsing: tooLongWithSlashes) }
        let error2 = #expect(throws: RegistryError.self) { try RepositoryName(parsing: tooLongWithSlashes + "a") }
        #expect(error2?.code == .nameInvalid)
    }

    @Test func components() throws {
        let name = try RepositoryName(parsing: "library/alpine")
        #expect(name.components == ["library", "alpine"])
        let joined = try RepositoryName(components: ["org", "team", "app"])
        #expect(joined.value == "org/team/app")
    }

    @Test func componentsInitValidates() {
        let error = #expect(throws: RegistryError.self) { try RepositoryName(components: ["a", "..", "b"]) }
        #expect(error?.code == .nameInvalid)
        #expect(throws: RegistryError.self) { try RepositoryName(components: []) }
        #expect(throws: RegistryError.self) { try RepositoryName(components: ["a", ""]) }
    }

    @Test(arguments: [
        ("a", true), ("a.b", true), ("a_b", true), ("a__b", true), ("a-b", true), ("a----b", true),
        ("a___b", false), ("a.-b", false), ("-a", false), ("a-", false), ("", false), ("A", false),
        ("..", false), ("a/b", false),
    ])
    func isValidComponent(_ component: String, _ expected: Bool) {
        #expect(RepositoryName.isValidComponent(component) == expected)
    }

    @Test func prefixed() throws {
        let name = try RepositoryName(parsing: "library/alpine")
        #expect(name.prefixed(with: "") == "library/alpine")
        #expect(name.prefixed(with: "dockerhub-proxy") == "dockerhub-proxy/library/alpine")
    }
}
