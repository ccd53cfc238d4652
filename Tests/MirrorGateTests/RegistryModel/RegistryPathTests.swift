import RegistryModel
import Testing

@Suite("RegistryPath")
struct RegistryPathTests {
    static let digest = "sha256:" + String(repeating: "0", count: 64)

    @Test(arguments: [
        ("/v2/", [], RegistryPath.Endpoint.base),
        ("/v2", [], .base),
        ("/v2/_catalog", [], .catalog),
        ("/v2/_catalog/", [], .catalog),
        ("/v2/library/alpine/manifests/latest", ["library", "alpine"], .manifest("latest")),
        ("/v2/alpine/manifests/\(Self.digest)", ["alpine"], .manifest(Self.digest)),
        ("/v2/a/manifests/manifests/latest", ["a", "manifests"], .manifest("latest")),
        ("/v2/manifests/manifests/manifests", ["manifests"], .manifest("manifests")),
        ("/v2/a/blobs/blobs/\(Self.digest)", ["a", "blobs"], .blob(Self.digest)),
        ("/v2/library/alpine/blobs/\(Self.digest)", ["library", "alpine"], .blob(Self.digest)),
        ("/v2/ghcr.io/org/app/blobs/\(Self.digest)", ["ghcr.io", "org", "app"], .blob(Self.digest)),
        ("/v2/x/blobs/uploads/", ["x"], .upload),
        ("/v2/x/blobs/uploads", ["x"], .upload),
        ("/v2/x/blobs/uploads/uuid", ["x"], .upload),
        ("/v2/org/x/blobs/uploads/0b3c-11", ["org", "x"], .upload),
        ("/v2/library/alpine/tags/list", ["library", "alpine"], .tagsList),
        ("/v2/a/tags/list/", ["a"], .tagsList),
        ("/v2/a/tags/tags/list", ["a", "tags"], .tagsList),
        ("/v2/library/alpine/referrers/\(Self.digest)", ["library", "alpine"], .referrers(Self.digest)),
        ("/v2/a/blobs/uploads/manifests/latest", ["a", "blobs", "uploads"], .manifest("latest")),
    ] as [(String, [Substring], RegistryPath.Endpoint)])
    func parses(_ path: String, _ repository: [Substring], _ endpoint: RegistryPath.Endpoint) throws {
        let parsed = try #require(RegistryPath(path: Substring(path)))
        #expect(parsed.repository == repository)
        #expect(parsed.endpoint == endpoint)
    }

    @Test(arguments: [
        "/",
        "",
        "/v1/",
        "/v2x",
        "/v20/",
        "/V2/",
        "v2/",
        "/healthz",
        "/x/v2/a/manifests/latest",
        "/v2/x",
        "/v2/x/",
        "/v2/x/manifests",
        "/v2/manifests/latest",
        "/v2/tags/list",
        "/v2/a/unknown/thing",
        "/v2/a/b/c",
        "/v2/a/blobs",
        "/v2/blobs/uploads/",
    ])
    func rejectsNonDistributionPaths(_ path: String) {
        #expect(RegistryPath(path: Substring(path)) == nil)
    }

    @Test func keepsHostileComponentsForLaterValidation() throws {
        // RegistryPath does not validate the repository; RepositoryName does.
        let parsed = try #require(RegistryPath(path: "/v2/../etc/manifests/latest"))
        #expect(parsed.repository == ["..", "etc"])
        #expect(parsed.endpoint == .manifest("latest"))
        #expect(throws: RegistryError.self) { try RepositoryName(components: parsed.repository) }

        let doubled = try #require(RegistryPath(path: "/v2/a//b/manifests/latest"))
        #expect(doubled.repository == ["a", "", "b"])
        #expect(throws: RegistryError.self) { try RepositoryName(components: doubled.repository) }
    }

    @Test func emptyReferenceIsKeptAndRejectedLater() throws {
        let parsed = try #require(RegistryPath(path: "/v2/a/b/manifests//"))
        // A trailing slash is dropped once; the empty reference then fails Reference parsing.
        #expect(parsed.repository == ["a", "b"])
        #expect(parsed.endpoint == .manifest(""))
        let error = #expect(throws: RegistryError.self) { try Reference(parsing: "") }
        #expect(error?.code == .manifestUnknown)
    }
}
