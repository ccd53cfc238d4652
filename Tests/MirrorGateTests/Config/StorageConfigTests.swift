import Foundation
import MirrorGateConfig
import Testing

/// `storage:` with its backend: the filesystem default, and `storage.s3` with every key
/// checked and named.
@Suite("storage configuration")
struct StorageConfigTests {
    static let registries = """
        registries:
          docker.io:
            upstreams:
              - url: https://mirror.gcr.io
        """

    /// The issue's example, with the secret in a file.
    static let s3YAML = """
        storage:
          path: ./data
          max_size: 500GiB
          backend: s3
          s3:
            endpoint: https://s3.eu-west-1.amazonaws.com
            region: eu-west-1
            bucket: mirrorgate-cache
            prefix: ""
            path_style: false
            access_key_id: ${S3_ACCESS_KEY_ID}
            secret_access_key_file: /run/secrets/s3-secret
            redirect: false
        """

    static let environment = ["S3_ACCESS_KEY_ID": "AKIAEXAMPLE", "S3_SECRET": "c2VjcmV0/+key"]
    static let files = ["/run/secrets/s3-secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\r\n"]

    static func load(_ storage: String, env: [String: String] = environment, files: [String: String] = files) throws -> GatewayConfig {
        try ConfigLoader(environment: env, readFile: { path in
            guard let content = files[path] else { throw CocoaError(.fileReadNoSuchFile) }
            return content
        }).load(yaml: storage + "\n" + registries)
    }

    /// The `.invalid` error `storage` fails with: its key, line and message.
    static func invalid(_ storage: String, env: [String: String] = environment) -> (key: String, line: Int?, message: String)? {
        do {
            _ = try load(storage, env: env)
            Issue.record("loaded")
        } catch let error as ConfigError {
            if case .invalid(let key, let line, let message) = error { return (key, line, message) }
            Issue.record("not .invalid: \(error)")
        } catch {
            Issue.record("\(error)")
        }
        return nil
    }

    /// `s3YAML` with `key: value` replaced (or removed when `value` is nil) under `storage.s3`.
    static func s3(_ key: String, _ value: String?) -> String {
        s3YAML.split(separator: "\n", omittingEmptySubsequences: false).compactMap { line -> String? in
            guard line.hasPrefix("    \(key):") else { return String(line) }
            return value.map { "    \(key): \($0)" }
        }.joined(separator: "\n")
    }

    @Test func filesystemIsTheDefault() throws {
        let config = try Self.load("storage:\n  path: /var/cache/mg\n  max_size: 2GiB\n  max_blob_size: 1GiB")
        #expect(config.storage.backend == .filesystem)
        #expect(config.storage.s3 == nil)
        #expect(config.storage.maxBlobSize == 1 << 30)
        #expect(try Self.load("storage:\n  backend: filesystem").storage.backend == .filesystem)
        #expect(try Self.load("").storage == StorageConfig(path: "./data", maxSize: 50 << 30))
    }

    @Test func theIssuesExampleLoads() throws {
        let config = try Self.load(Self.s3YAML)
        #expect(config.storage.backend == .s3)
        #expect(config.storage.maxSize == 500 << 30)
        let s3 = try #require(config.storage.s3)
        #expect(s3 == S3StorageConfig(
            endpoint: "https://s3.eu-west-1.amazonaws.com", region: "eu-west-1", bucket: "mirrorgate-cache", prefix: "",
            pathStyle: false, accessKeyID: "AKIAEXAMPLE", secretAccessKey: Secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            redirect: false))
        #expect(!"\(config)".contains("EXAMPLEKEY"))
    }

    @Test func selfHostedStoreWithAnInlineSecret() throws {
        var yaml = Self.s3("endpoint", "http://127.0.0.1:9000/")
        yaml = yaml.replacingOccurrences(of: "secret_access_key_file: /run/secrets/s3-secret", with: "secret_access_key: ${S3_SECRET}")
        yaml = yaml.replacingOccurrences(of: "path_style: false", with: "path_style: true")
        yaml = yaml.replacingOccurrences(of: "prefix: \"\"", with: "prefix: mirrorgate/")
        yaml = yaml.replacingOccurrences(of: "redirect: false", with: "redirect: true")
        let s3 = try #require(try Self.load(yaml).storage.s3)
        #expect(s3.endpoint == "http://127.0.0.1:9000")
        #expect(s3.pathStyle && s3.redirect)
        #expect(s3.prefix == "mirrorgate/")
        #expect(s3.secretAccessKey.value == "c2VjcmV0/+key")
        // Optional keys default: no prefix, virtual-host style, no redirect.
        var minimal = Self.s3("prefix", nil)
        minimal = minimal.replacingOccurrences(of: "    path_style: false\n", with: "").replacingOccurrences(of: "\n    redirect: false", with: "")
        let defaults = try #require(try Self.load(minimal).storage.s3)
        #expect(defaults.prefix == "" && !defaults.pathStyle && !defaults.redirect)
    }

    @Test func backendAndSectionMustAgree() {
        let unknown = Self.invalid("storage:\n  backend: gcs")
        #expect(unknown?.key == "storage.backend" && unknown?.line == 2)
        #expect(unknown?.message.contains("use one of filesystem, s3") == true)

        let missing = Self.invalid("storage:\n  path: ./data\n  backend: s3")
        #expect(missing?.key == "storage.s3" && missing?.line == 3)
        #expect(missing?.message.contains("required when storage.backend is s3") == true)

        let forgotten = Self.invalid(Self.s3YAML.replacingOccurrences(of: "  backend: s3\n", with: ""))
        #expect(forgotten?.key == "storage.s3" && forgotten?.line == 5)
        #expect(forgotten?.message.contains("storage.backend is filesystem") == true)

        let typo = Self.invalid(Self.s3("bucket_name", nil) + "\n    bucket_name: x")
        #expect(typo?.key == "storage.s3.bucket_name")
        #expect(typo?.message.contains("unknown key") == true)
    }

    @Test(arguments: [
        ("endpoint", "ftp://s3.example.com", "not an http:// or https:// URL"),
        ("endpoint", "https://key:secret@s3.example.com", "must not carry credentials"),
        ("endpoint", "https://s3.example.com/mirrorgate-cache", "scheme://host[:port] only"),
        ("endpoint", "https://s3.example.com?x=1", "scheme://host[:port] only"),
        ("endpoint", "http://10.0.0.5:9000", "must be true for an IP address endpoint"),
        ("region", "EU West", "not a region name"),
        ("region", "\"\"", "must not be empty"),
        ("bucket", "My_Bucket", "not a bucket name"),
        ("bucket", "ab", "not a bucket name"),
        ("bucket", "a..b", "not a bucket name"),
        ("bucket", "mirror.gate.cache", "does not match the endpoint's TLS certificate"),
        ("prefix", "/mirrorgate/", "must not start with '/'"),
        ("path_style", "maybe", "expected true or false"),
        ("access_key_id", "\"AKIA EXAMPLE\"", "contains whitespace"),
        ("redirect", "sometimes", "expected true or false"),
    ])
    func badValuesNameTheirKey(key: String, value: String, message: String) {
        let error = Self.invalid(Self.s3(key, value))
        // An IP address or dotted bucket is a path_style problem: that is the key to change.
        let named = message.contains("must be true") || message.contains("TLS certificate") ? "path_style" : key
        #expect(error?.key == "storage.s3.\(named)", "\(String(describing: error))")
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
        #expect(error?.line != nil)
    }

    @Test func requiredKeys() {
        for key in ["endpoint", "region", "bucket", "access_key_id"] {
            let error = Self.invalid(Self.s3(key, nil))
            #expect(error?.key == "storage.s3.\(key)", "\(String(describing: error))")
            #expect(error?.message == "required key is missing")
        }
    }

    @Test func theSecretComesFromExactlyOnePlace() throws {
        let none = Self.invalid(Self.s3("secret_access_key_file", nil))
        #expect(none?.key == "storage.s3.secret_access_key")
        #expect(none?.message.contains("set secret_access_key or secret_access_key_file") == true)

        let both = Self.invalid(Self.s3YAML + "\n    secret_access_key: x")
        #expect(both?.key == "storage.s3.secret_access_key_file")
        #expect(both?.message.contains("not both") == true)

        let empty = Self.invalid(Self.s3("secret_access_key_file", nil) + "\n    secret_access_key: \"\"")
        #expect(empty?.message.contains("the secret is empty") == true)

        let spaced = Self.invalid(Self.s3("secret_access_key_file", nil) + "\n    secret_access_key: \"a b\"")
        #expect(spaced?.message.contains("whitespace") == true)
        #expect(spaced?.message.contains("a b") == false, "the message shows no secret")

        #expect(throws: ConfigError.unreadableSecretFile(
            path: "/run/secrets/absent", key: "storage.s3.secret_access_key_file", line: 12, reason: "no such file")
        ) {
            _ = try Self.load(Self.s3("secret_access_key_file", "/run/secrets/absent"))
        }
        #expect(throws: ConfigError.missingEnvironmentVariable(name: "S3_ACCESS_KEY_ID", key: "storage.s3.access_key_id", line: 11)) {
            _ = try Self.load(Self.s3YAML, env: [:])
        }
    }

    @Test func checkPrintsTheBackendWithoutTheSecret() throws {
        let filesystem = try Self.load("storage:\n  path: /srv/cache\n  max_size: 2GiB").routingPlan
        #expect(filesystem.contains("storage: /srv/cache (max 2GiB, blobs up to 16GiB)"))
        #expect(!filesystem.contains("s3"))

        let yaml = Self.s3("redirect", "true").replacingOccurrences(of: "prefix: \"\"", with: "prefix: mg/")
        let plan = try Self.load(yaml).routingPlan
        #expect(plan.contains("storage: s3 bucket mirrorgate-cache at https://s3.eu-west-1.amazonaws.com (max 500GiB, blobs up to 16GiB)"), "\(plan)")
        #expect(plan.contains("  region eu-west-1, prefix \"mg/\", virtual-host style URLs, access key AKIAEXAMPLE"))
        #expect(plan.contains("  cached blob GETs: 307 to a presigned URL of the object"))
        #expect(plan.contains("  in-flight fetches and metadata: ./data"))
        #expect(!plan.contains("EXAMPLEKEY"), "the secret leaked into check: \(plan)")
    }
}
