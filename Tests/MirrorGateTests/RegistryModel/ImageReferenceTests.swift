import RegistryModel
import Testing

@Suite("ImageReference")
struct ImageReferenceTests {
    static let hex64 = String(repeating: "0f", count: 32)
    static let digest = "sha256:\(hex64)"

    /// (input, registry, repository, reference, display tag, canonical description)
    @Test(arguments: [
        ("alpine", "docker.io", "library/alpine", "latest", nil, "docker.io/library/alpine:latest"),
        ("alpine:3.20", "docker.io", "library/alpine", "3.20", nil, "docker.io/library/alpine:3.20"),
        ("library/alpine@\(digest)", "docker.io", "library/alpine", digest, nil, "docker.io/library/alpine@\(digest)"),
        ("alpine:3.20@\(digest)", "docker.io", "library/alpine", digest, "3.20", "docker.io/library/alpine:3.20@\(digest)"),
        ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", nil, "docker.io/bitnami/redis:7"),
        ("docker.io/alpine", "docker.io", "library/alpine", "latest", nil, "docker.io/library/alpine:latest"),
        ("index.docker.io/library/alpine:edge", "docker.io", "library/alpine", "edge", nil, "docker.io/library/alpine:edge"),
        ("registry-1.docker.io/grafana/grafana", "docker.io", "grafana/grafana", "latest", nil, "docker.io/grafana/grafana:latest"),
        ("ghcr.io/org/app:tag", "ghcr.io", "org/app", "tag", nil, "ghcr.io/org/app:tag"),
        ("ghcr.io/app", "ghcr.io", "app", "latest", nil, "ghcr.io/app:latest"),
        ("registry.example.com:5000/x/y:z", "registry.example.com:5000", "x/y", "z", nil, "registry.example.com:5000/x/y:z"),
        ("registry.example.com:5000/x/y", "registry.example.com:5000", "x/y", "latest", nil, "registry.example.com:5000/x/y:latest"),
        ("localhost/foo", "localhost", "foo", "latest", nil, "localhost/foo:latest"),
        ("localhost:5000/foo/bar@\(digest)", "localhost:5000", "foo/bar", digest, nil, "localhost:5000/foo/bar@\(digest)"),
        ("Quay.IO/coreos/etcd:v3.5.0", "quay.io", "coreos/etcd", "v3.5.0", nil, "quay.io/coreos/etcd:v3.5.0"),
        ("127.0.0.1:5000/a/b/c:1.0-rc_1", "127.0.0.1:5000", "a/b/c", "1.0-rc_1", nil, "127.0.0.1:5000/a/b/c:1.0-rc_1"),
    ] as [(String, String, String, String, String?, String)])
    func parsesAndNormalises(_ input: String, _ registry: String, _ repository: String, _ reference: String, _ tag: String?, _ canonical: String) throws {
        let image = try ImageReference(parsing: input)
        #expect(image.registry == registry)
        #expect(image.repository.value == repository)
        #expect(image.reference.description == reference)
        #expect(image.tag == tag)
        #expect(image.description == canonical)
        // The canonical form parses to the same reference.
        #expect(try ImageReference(parsing: image.description) == image)
    }

    @Test func digestReferenceIsADigest() throws {
        let image = try ImageReference(parsing: "library/alpine@\(Self.digest)")
        #expect(image.reference.digest == Digest(algorithm: .sha256, hex: Self.hex64))
    }

    @Test(arguments: [
        ("", RegistryError.Code.nameInvalid),
        ("Alpine", .nameInvalid),  // upper case in a repository name
        ("docker.io/", .nameInvalid),  // empty repository
        ("ghcr.io//app", .nameInvalid),
        ("alpine:", .manifestUnknown),
        ("alpine:-bad", .manifestUnknown),
        ("alpine@sha256:abc", .digestInvalid),
        ("alpine@md5:d41d8cd98f00b204e9800998ecf8427e", .digestInvalid),
        ("host:port/app", .nameInvalid),  // a port must be digits
        ("-bad.example.com/app", .nameInvalid),
        ("bad..example.com/app", .nameInvalid),
        ("registry.example.com:123456/app", .nameInvalid),
        ("alpine 3", .nameInvalid),
        ("../etc/passwd", .nameInvalid),
        ("ghcr.io/org/app:tag:more", .nameInvalid),
        // Upper case made these registries, whose lower-cased description then read as Docker
        // Hub names (found by the property suite).
        ("Registry/s", .nameInvalid),
        ("65535Alibrary/k/a", .nameInvalid),
        ("LOCALHOSTX/app", .nameInvalid),
    ])
    func rejects(_ input: String, _ code: RegistryError.Code) {
        let error = #expect(throws: RegistryError.self) { try ImageReference(parsing: input) }
        #expect(error?.code == code, "\(input): \(String(describing: error))")
    }
}

@Suite("ImagePlatform")
struct ImagePlatformTests {
    @Test func parses() throws {
        let platform = try ImagePlatform(parsing: "linux/arm64/v8")
        #expect(platform.os == "linux")
        #expect(platform.architecture == "arm64")
        #expect(platform.variant == "v8")
        #expect(platform.description == "linux/arm64/v8")
        #expect(try ImagePlatform(parsing: "Linux/AMD64").description == "linux/amd64")
    }

    @Test(arguments: ["", "linux", "linux/", "/amd64", "linux/amd64/v8/x", "linux/am d64", "linux//v7"])
    func rejects(_ input: String) {
        #expect(throws: RegistryError.self) { try ImagePlatform(parsing: input) }
    }

    @Test(arguments: [
        ("linux/amd64", "linux", "amd64", nil, true),
        ("linux/amd64", "linux", "arm64", "v8", false),
        ("linux/amd64", "windows", "amd64", nil, false),
        ("linux/arm64", "linux", "arm64", "v8", true),  // no variant asked for: any variant
        ("linux/arm64", "linux", "arm64", nil, true),
        ("linux/arm64/v8", "linux", "arm64", nil, true),  // arm64 without a variant is v8
        ("linux/arm64/v8", "linux", "arm64", "v8", true),
        ("linux/arm/v7", "linux", "arm", "v6", false),
        ("linux/arm/v7", "linux", "arm", nil, false),
        ("linux/arm/v7", "linux", "arm", "v7", true),
    ] as [(String, String, String, String?, Bool)])
    func matches(_ wanted: String, _ os: String, _ architecture: String, _ variant: String?, _ expected: Bool) throws {
        let candidate = ImagePlatform(os: os, architecture: architecture, variant: variant)
        #expect(try ImagePlatform(parsing: wanted).matches(candidate) == expected)
    }
}
