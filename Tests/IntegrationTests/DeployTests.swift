#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Yams

/// `deploy/`: every YAML, TOML and JSON file parses; the Kubernetes manifests validate against
/// the Kubernetes schema (`kubernetes-validate`) and agree with each other, the Dockerfile and
/// the configuration they carry; every `gateway.yaml` there is accepted by the real
/// `mirrorgate check`; the image's configuration runs on a read-only root with only the cache
/// volume writable, as an unprivileged user; the systemd unit passes `systemd-analyze verify`;
/// and the containerd and CRI-O client files pull through a real gateway with real clients.
///
/// The PyPI tools (kubernetes-validate, dockerfile-parse) come from `scripts/install-deploy-tools`
/// (run by `make deps`/`make test`) in `.build/deploy-tools`; TOML is parsed by Python's tomllib.
@Suite(.serialized)
struct DeployTests {
    // MARK: - Locations and tools

    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // IntegrationTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()
    static let deployDirectory = packageRoot.appendingPathComponent("deploy", isDirectory: true)
    static let k8sDirectory = deployDirectory.appendingPathComponent("k8s", isDirectory: true)
    static let toolsDirectory = packageRoot.appendingPathComponent(".build/deploy-tools/bin", isDirectory: true)

    /// An executable from `.build/deploy-tools/bin`, or a failure that says how to install it.
    static func tool(_ name: String) throws -> URL {
        let url = toolsDirectory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw ManagedProcess.Failure("\(url.path) is missing: run scripts/install-deploy-tools (part of `make deps`)")
        }
        return url
    }

    /// A Debian program the tests need (installed by `make deps`).
    static func program(_ name: String) throws -> URL {
        guard let url = ManagedProcess.which(name) else {
            throw ManagedProcess.Failure("\(name) is not installed: run `make deps`")
        }
        return url
    }

    /// Files under `deploy/` whose names end with one of `suffixes`, as paths relative to
    /// `deploy/`, sorted. Walks the whole tree, hidden files included, so a new file is
    /// picked up without touching this test.
    static func deployFiles(endingWith suffixes: [String]) -> [String] {
        let root = deployDirectory.resolvingSymlinksInPath().path
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        var found: [String] = []
        while let relative = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            if suffixes.contains(where: { relative.hasSuffix($0) }) { found.append(relative) }
        }
        return found.sorted()
    }

    static func deployURL(_ relative: String) -> URL { deployDirectory.appendingPathComponent(relative) }

    static func text(_ url: URL) throws -> String { try String(contentsOf: url, encoding: .utf8) }

    // MARK: - Parsing

    /// Every document of a YAML file (Yams; duplicate keys are an error).
    static func yamlDocuments(_ text: String) throws -> [Node] {
        var sequence = try Yams.compose_all(yaml: text)
        var documents: [Node] = []
        while let node = sequence.next() { documents.append(node) }
        if let error = sequence.error { throw error }
        return documents
    }

    static func yamlDocument(_ url: URL) throws -> Node {
        let documents = try yamlDocuments(text(url))
        guard documents.count == 1 else { throw ManagedProcess.Failure("\(url.path): expected one YAML document, found \(documents.count)") }
        return documents[0]
    }

    /// Python's standard TOML parser (tomllib) and dockerfile-parse, run from the tools venv;
    /// the answer is JSON.
    static let pythonHelper = """
        import json, sys, tomllib
        mode, paths = sys.argv[1], sys.argv[2:]
        if mode == "toml":
            out = {}
            for path in paths:
                with open(path, "rb") as f:
                    try:
                        out[path] = {"value": tomllib.load(f)}
                    except tomllib.TOMLDecodeError as e:
                        out[path] = {"error": str(e)}
            json.dump(out, sys.stdout, default=str)
        elif mode == "dockerfile":
            from dockerfile_parse import DockerfileParser
            parser = DockerfileParser(path=paths[0], env_replace=True)
            json.dump({
                "parent_images": parser.parent_images,
                "instructions": [
                    {"instruction": s["instruction"], "value": s["value"], "line": s["startline"] + 1}
                    for s in parser.structure if s["instruction"] != "COMMENT"
                ],
            }, sys.stdout)
        """

    static func runPython(_ mode: String, _ paths: [String]) async throws -> Data {
        let result = try await ManagedProcess.run(try tool("python3"), arguments: ["-c", pythonHelper, mode] + paths, timeout: .seconds(60))
        guard result.succeeded else { throw ManagedProcess.Failure("python helper (\(mode)) failed: \(result.stderr)") }
        return result.stdout
    }

    /// Parses TOML files with tomllib: path -> value, or path -> error message.
    static func parseTOML(_ urls: [URL]) async throws -> [String: Result<[String: Any], ManagedProcess.Failure>] {
        let data = try await runPython("toml", urls.map(\.path))
        guard let answer = try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]] else {
            throw ManagedProcess.Failure("unexpected tomllib answer")
        }
        var parsed: [String: Result<[String: Any], ManagedProcess.Failure>] = [:]
        for (path, entry) in answer {
            if let value = entry["value"] as? [String: Any] {
                parsed[path] = .success(value)
            } else {
                parsed[path] = .failure(ManagedProcess.Failure("\(entry["error"] ?? "not a table")"))
            }
        }
        return parsed
    }

    static func parseTOML(_ url: URL) async throws -> [String: Any] {
        guard let result = try await parseTOML([url])[url.path] else { throw ManagedProcess.Failure("no answer for \(url.path)") }
        return try result.get()
    }

    // MARK: - The configurations in deploy/

    /// The Kubernetes manifests of a variant (`deploy/k8s` unless named), by file name
    /// (`kustomization.yaml` excluded).
    static func manifests(in directory: URL = k8sDirectory) throws -> [String: [Node]] {
        var result: [String: [Node]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path)
        where (name.hasSuffix(".yaml") || name.hasSuffix(".yml")) && name != "kustomization.yaml" {
            result[name] = try yamlDocuments(text(directory.appendingPathComponent(name)))
        }
        return result
    }

    static func manifest(kind: String, in manifests: [String: [Node]]) throws -> Node {
        let found = manifests.values.flatMap { $0 }.filter { $0["kind"]?.string == kind }
        guard found.count == 1 else { throw ManagedProcess.Failure("expected one \(kind), found \(found.count)") }
        return found[0]
    }

    /// Every object of `kind`, by `metadata.name`.
    static func objects(kind: String, in manifests: [String: [Node]]) -> [String: Node] {
        var found: [String: Node] = [:]
        for document in manifests.values.flatMap({ $0 }) where document["kind"]?.string == kind {
            if let name = document["metadata"]?["name"]?.string { found[name] = document }
        }
        return found
    }

    /// The ConfigMap's `gateway.yaml` made runnable outside the cluster, as the pod would see it:
    /// each item of every Secret volume written to `<scratch><mountPath>/<path>` (and the
    /// configuration pointed there), and the container's environment resolved from the Secrets
    /// and literal values; `fieldRef` variables get `fieldValues[fieldPath]`.
    static func configMapAsThePodSeesIt(
        _ manifests: [String: [Node]], scratch: TemporaryDirectory, fieldValues: [String: String] = [:]
    ) throws -> (config: URL, environment: [String: String]) {
        var text = try configMapGatewayYAML(manifests)
        let deployment = try manifest(kind: "Deployment", in: manifests)
        let container = try container(deployment)
        let secrets = objects(kind: "Secret", in: manifests).mapValues { $0["stringData"]?.mapping ?? [:] }
        var environment: [String: String] = [:]
        for variable in container["env"]?.sequence ?? [] {
            guard let name = variable["name"]?.string else { continue }
            if let ref = variable["valueFrom"]?["secretKeyRef"], let secret = ref["name"]?.string, let key = ref["key"]?.string {
                environment[name] = secrets[secret]?[key]?.string
            } else if let path = variable["valueFrom"]?["fieldRef"]?["fieldPath"]?.string {
                environment[name] = fieldValues[path]
            } else if let value = variable["value"]?.string {
                environment[name] = value
            }
        }
        var mounts: [String: String] = [:]
        for mount in container["volumeMounts"]?.sequence ?? [] {
            if let name = mount["name"]?.string, let path = mount["mountPath"]?.string { mounts[name] = path }
        }
        for volume in deployment["spec"]?["template"]?["spec"]?["volumes"]?.sequence ?? [] {
            guard let source = volume["secret"], let name = volume["name"]?.string, let mountPath = mounts[name] else { continue }
            let values = secrets[source["secretName"]?.string ?? ""] ?? [:]
            let directory = scratch.url.appendingPathComponent(String(mountPath.dropFirst()), isDirectory: true)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for item in source["items"]?.sequence ?? [] {
                guard let key = item["key"]?.string, let path = item["path"]?.string, let value = values[key]?.string else { continue }
                try value.write(to: directory.appendingPathComponent(path), atomically: true, encoding: .utf8)
            }
            #expect(text.contains(mountPath + "/"), "the ConfigMap's configuration does not read from the Secret mounted at \(mountPath)")
            text = text.replacingOccurrences(of: mountPath + "/", with: directory.path + "/")
        }
        let url = scratch.appending("configmap-gateway.yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return (url, environment)
    }

    /// The `gateway.yaml` text the ConfigMap carries.
    static func configMapGatewayYAML(_ manifests: [String: [Node]]) throws -> String {
        let configMap = try manifest(kind: "ConfigMap", in: manifests)
        guard let text = configMap["data"]?["gateway.yaml"]?.string else {
            throw ManagedProcess.Failure("the ConfigMap has no data.gateway.yaml")
        }
        return text
    }

    /// `host:port` -> port.
    static func port(_ listen: String?) -> Int? {
        guard let listen, let colon = listen.lastIndex(of: ":") else { return nil }
        return Int(listen[listen.index(after: colon)...])
    }

    /// The container of the Deployment.
    static func container(_ deployment: Node) throws -> Node {
        guard let containers = deployment["spec"]?["template"]?["spec"]?["containers"]?.sequence, containers.count == 1 else {
            throw ManagedProcess.Failure("the Deployment should have exactly one container")
        }
        return containers[0]
    }

    // MARK: - Every file parses

    @Test func everyYAMLFileInDeployParses() throws {
        let files = Self.deployFiles(endingWith: [".yaml", ".yml"])
        // The walk found the files this suite knows about (so it is walking the right place).
        for expected in ["gateway.yaml", "k8s/kustomization.yaml", "k8s/deployment.yaml", "clients/gitlab-ci/gitlab-ci.yml"] {
            #expect(files.contains(expected), "deploy/\(expected) not found by the walk: \(files)")
        }
        for file in files {
            do {
                let documents = try Self.yamlDocuments(Self.text(Self.deployURL(file)))
                #expect(!documents.isEmpty, "deploy/\(file) has no YAML document")
                for document in documents {
                    #expect(document.mapping != nil, "deploy/\(file): a document is not a mapping")
                }
            } catch {
                Issue.record("deploy/\(file) does not parse as YAML: \(error)")
            }
        }
        // YAML embedded in ConfigMaps parses too.
        for (name, documents) in try Self.manifests() {
            for document in documents where document["kind"]?.string == "ConfigMap" {
                for (key, value) in document["data"]?.mapping ?? [:] where key.string?.hasSuffix(".yaml") == true {
                    #expect(throws: Never.self, "k8s/\(name) data.\(key.string ?? "")") {
                        _ = try Self.yamlDocuments(value.string ?? "")
                    }
                }
            }
        }
    }

    /// `.toml` files, and `.conf` files (in deploy/ these are containers-registries.conf, TOML).
    @Test func everyTOMLFileInDeployParses() async throws {
        let files = Self.deployFiles(endingWith: [".toml", ".conf"])
        for expected in ["clients/containerd/certs.d/docker.io/hosts.toml", "clients/containerd/certs.d/_default/hosts.toml", "clients/cri-o/registries.conf"] {
            #expect(files.contains(expected), "deploy/\(expected) not found by the walk: \(files)")
        }
        let parsed = try await Self.parseTOML(files.map(Self.deployURL))
        for file in files {
            switch parsed[Self.deployURL(file).path] {
            case .success: break
            case .failure(let error): Issue.record("deploy/\(file) is not valid TOML: \(error)")
            case nil: Issue.record("deploy/\(file): no answer from tomllib")
            }
        }
        // The parser does reject bad TOML (so a pass above means something).
        let scratch = try TemporaryDirectory(prefix: "deploy-toml")
        let broken = scratch.appending("broken.toml")
        try "[host.\"http://gateway:5000\"]\ncapabilities = [\"pull\", \"resolve\"\n".write(to: broken, atomically: true, encoding: .utf8)
        await #expect(throws: (any Error).self) { try await Self.parseTOML(broken) }
    }

    @Test func everyJSONFileInDeployParses() throws {
        let files = Self.deployFiles(endingWith: [".json"])
        #expect(files.contains("clients/dockerd/daemon.json"))
        for file in files {
            #expect(throws: Never.self, "deploy/\(file)") {
                _ = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.deployURL(file)))
            }
        }
    }

    // MARK: - Kubernetes

    /// kustomization.yaml is rendered by hand (kustomize may not be installed): it lists every
    /// manifest in deploy/k8s and nothing else, every object has apiVersion, kind and a name,
    /// and namespaced objects name no namespace other than the kustomization's, which the
    /// Namespace object creates.
    @Test func kustomizationListsEveryManifestUnderOneNamespace() throws {
        let kustomization = try Self.yamlDocument(Self.k8sDirectory.appendingPathComponent("kustomization.yaml"))
        #expect(kustomization["kind"]?.string == "Kustomization")
        let resources = (kustomization["resources"]?.sequence.map { Array($0) } ?? []).compactMap(\.string)
        let manifests = try Self.manifests()
        #expect(Set(resources) == Set(manifests.keys), "resources: \(resources) vs files: \(manifests.keys.sorted())")
        #expect(resources.count == Set(resources).count, "a resource is listed twice")

        let namespace = try #require(kustomization["namespace"]?.string)
        let namespaceObject = try Self.manifest(kind: "Namespace", in: manifests)
        #expect(namespaceObject["metadata"]?["name"]?.string == namespace)
        let clusterScoped: Set<String> = ["Namespace", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding"]
        var kinds: [String] = []
        for (file, documents) in manifests {
            for document in documents {
                let kind = document["kind"]?.string ?? ""
                kinds.append(kind)
                #expect(document["apiVersion"]?.string?.isEmpty == false, "k8s/\(file): no apiVersion")
                #expect(!kind.isEmpty, "k8s/\(file): no kind")
                #expect(document["metadata"]?["name"]?.string?.isEmpty == false, "k8s/\(file): no metadata.name")
                if !clusterScoped.contains(kind), let own = document["metadata"]?["namespace"]?.string {
                    #expect(own == namespace, "k8s/\(file): namespace \(own) differs from the kustomization's \(namespace)")
                }
            }
        }
        #expect(Set(kinds).isSuperset(of: ["Namespace", "ConfigMap", "Secret", "Deployment", "PersistentVolumeClaim", "Service"]), "\(kinds)")

        // The image the kustomization sets is the Deployment's.
        let deployment = try Self.manifest(kind: "Deployment", in: manifests)
        let image = try Self.container(deployment)["image"]?.string
        let imageNames = (kustomization["images"]?.sequence.map { Array($0) } ?? []).compactMap { $0["name"]?.string }
        #expect(imageNames.contains(image ?? ""), "kustomization images \(imageNames) do not set the Deployment's image \(image ?? "-")")
    }

    /// `kubernetes-validate --strict` against the oldest and newest Kubernetes schema it ships
    /// that we support, for every manifest; a manifest with a misspelt field is rejected.
    @Test func manifestsValidateAgainstTheKubernetesSchema() async throws {
        let validator = try Self.tool("kubernetes-validate")
        let files = try Self.manifests().keys.sorted().map { Self.k8sDirectory.appendingPathComponent($0).path }
        #expect(files.count >= 6)
        for version in ["1.29.0", "1.37.0"] {
            let result = try await ManagedProcess.run(validator, arguments: ["--strict", "-k", version] + files, timeout: .seconds(120))
            #expect(result.succeeded, "kubernetes-validate \(version):\n\(result.stdoutText)\(result.stderr)")
            let output = result.stdoutText + result.stderr
            for file in files {
                #expect(output.contains("\(file) passed"), "\(file) not reported as passed against \(version):\n\(output)")
            }
        }
        // Negative control: the same Deployment with one misspelt securityContext field fails.
        let scratch = try TemporaryDirectory(prefix: "deploy-validate")
        let broken = scratch.appending("deployment.yaml")
        let deployment = try Self.text(Self.k8sDirectory.appendingPathComponent("deployment.yaml"))
        #expect(deployment.contains("readOnlyRootFilesystem: true"))
        try deployment.replacingOccurrences(of: "readOnlyRootFilesystem: true", with: "readOnlyRootFilesytem: true")
            .write(to: broken, atomically: true, encoding: .utf8)
        let rejected = try await ManagedProcess.run(validator, arguments: ["--strict", "-k", "1.37.0", broken.path], timeout: .seconds(120))
        #expect(!rejected.succeeded, "a misspelt field passed validation:\n\(rejected.stdoutText)")
    }

    /// The Deployment is hardened and wired to the configuration it mounts: ports, probes,
    /// storage path, the Secret behind password_file and ${DOCKERHUB_USER}; the Service, the
    /// claim and the ConfigMap are the ones it names.
    @Test func deploymentIsHardenedAndMatchesItsConfiguration() throws {
        let manifests = try Self.manifests()
        let deployment = try Self.manifest(kind: "Deployment", in: manifests)
        let pod = try #require(deployment["spec"]?["template"]?["spec"])
        let container = try Self.container(deployment)
        let config = try #require(try Yams.compose(yaml: Self.configMapGatewayYAML(manifests)))

        // Hardening.
        #expect(pod["securityContext"]?["runAsNonRoot"]?.bool == true)
        #expect((pod["securityContext"]?["runAsUser"]?.int ?? 0) > 0)
        #expect(pod["securityContext"]?["seccompProfile"]?["type"]?.string == "RuntimeDefault")
        #expect(pod["automountServiceAccountToken"]?.bool == false)
        let security = try #require(container["securityContext"])
        #expect(security["allowPrivilegeEscalation"]?.bool == false)
        #expect(security["readOnlyRootFilesystem"]?.bool == true)
        #expect(security["runAsNonRoot"]?.bool == true)
        #expect(security["capabilities"]?["drop"]?.sequence?.compactMap(\.string) == ["ALL"])
        // One writer for the ReadWriteOnce claim and its SQLite database.
        #expect(deployment["spec"]?["replicas"]?.int == 1)
        #expect(deployment["spec"]?["strategy"]?["type"]?.string == "Recreate")
        let podLabels = try #require(deployment["spec"]?["template"]?["metadata"]?["labels"]?.mapping)
        for (key, value) in deployment["spec"]?["selector"]?["matchLabels"]?.mapping ?? [:] {
            #expect(podLabels[key] == value, "selector \(key) does not match the pod's labels")
        }

        // Ports: the registry port is `listen`, the probes use `admin_listen`.
        var containerPorts: [String: Int] = [:]
        for port in container["ports"]?.sequence ?? [] {
            if let name = port["name"]?.string, let number = port["containerPort"]?.int { containerPorts[name] = number }
        }
        #expect(containerPorts["registry"] == Self.port(config["listen"]?.string))
        let adminPort = Self.port(config["admin_listen"]?.string) ?? Self.port(config["listen"]?.string)
        #expect(containerPorts["admin"] == adminPort)
        for (probe, path) in [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            let get = container[probe]?["httpGet"]
            #expect(get?["path"]?.string == path, "\(probe)")
            let target = get?["port"]
            let number = target?.int ?? target?.string.flatMap { containerPorts[$0] }
            #expect(number == adminPort, "\(probe) does not reach the admin port")
        }

        // Volumes: the config file the args name, the cache at storage.path, the Secret's token at password_file.
        var volumes: [String: Node] = [:]
        for volume in pod["volumes"]?.sequence ?? [] { if let name = volume["name"]?.string { volumes[name] = volume } }
        var mounts: [String: String] = [:]  // volume name -> mountPath
        for mount in container["volumeMounts"]?.sequence ?? [] {
            if let name = mount["name"]?.string, let path = mount["mountPath"]?.string { mounts[name] = path }
        }
        let args = container["args"]?.sequence?.compactMap(\.string) ?? []
        let configPath = try #require(args.firstIndex(of: "--config").map { args[$0 + 1] })
        let configMap = try Self.manifest(kind: "ConfigMap", in: manifests)
        let configVolume = try #require(volumes.first { $0.value["configMap"]?["name"]?.string == configMap["metadata"]?["name"]?.string })
        let configItems = configVolume.value["configMap"]?["items"]?.sequence.map { Array($0) } ?? []
        let configFile = configItems.first { $0["key"]?.string == "gateway.yaml" }?["path"]?.string ?? "gateway.yaml"
        #expect(mounts[configVolume.key].map { $0 + "/" + configFile } == configPath)

        let storagePath = try #require(config["storage"]?["path"]?.string)
        let claim = try Self.manifest(kind: "PersistentVolumeClaim", in: manifests)
        let cacheVolume = try #require(volumes.first { $0.value["persistentVolumeClaim"]?["claimName"]?.string == claim["metadata"]?["name"]?.string })
        #expect(mounts[cacheVolume.key] == storagePath, "the claim is not mounted at storage.path \(storagePath)")
        #expect(claim["spec"]?["accessModes"]?.sequence?.compactMap(\.string) == ["ReadWriteOnce"])

        let secret = try Self.manifest(kind: "Secret", in: manifests)
        let secretName = try #require(secret["metadata"]?["name"]?.string)
        let secretKeys = Set((secret["stringData"]?.mapping ?? secret["data"]?.mapping ?? [:]).keys.compactMap(\.string))
        let secretVolume = try #require(volumes.first { $0.value["secret"]?["secretName"]?.string == secretName })
        let secretMount = try #require(mounts[secretVolume.key])
        var secretFiles: [String: String] = [:]  // file path in the container -> key
        for item in secretVolume.value["secret"]?["items"]?.sequence ?? [] {
            if let key = item["key"]?.string, let path = item["path"]?.string { secretFiles[secretMount + "/" + path] = key }
        }
        var passwordFiles: [String] = []
        for registry in config["registries"]?.mapping.map({ Array($0.values) }) ?? [] {
            for upstream in registry["upstreams"]?.sequence ?? [] {
                if let file = upstream["password_file"]?.string { passwordFiles.append(file) }
            }
        }
        #expect(!passwordFiles.isEmpty, "the ConfigMap's configuration reads no password_file from the Secret")
        for file in passwordFiles {
            let key = try #require(secretFiles[file], "password_file \(file) is not a file of the mounted Secret")
            #expect(secretKeys.contains(key))
        }
        for variable in container["env"]?.sequence ?? [] {
            if let ref = variable["valueFrom"]?["secretKeyRef"] {
                #expect(ref["name"]?.string == secretName)
                #expect(secretKeys.contains(ref["key"]?.string ?? ""), "env \(variable["name"]?.string ?? "") names a missing Secret key")
            }
        }

        // The Service selects the pod and forwards to named container ports.
        let service = try Self.manifest(kind: "Service", in: manifests)
        for (key, value) in service["spec"]?["selector"]?.mapping ?? [:] {
            #expect(podLabels[key] == value, "the Service selector \(key) does not match the pod")
        }
        for port in service["spec"]?["ports"]?.sequence ?? [] {
            let target = port["targetPort"]
            let number = target?.int ?? target?.string.flatMap { containerPorts[$0] }
            #expect(number != nil && containerPorts.values.contains(number!), "Service port \(port["name"]?.string ?? "") targets no container port")
        }
        let servicePorts: [Int] = (service["spec"]?["ports"]?.sequence.map { Array($0) } ?? []).compactMap { $0["port"]?.int }
        #expect(Set(servicePorts).isSuperset(of: Set(containerPorts.values)), "Service ports \(servicePorts), container ports \(containerPorts)")
    }

    // MARK: - The real binary

    /// Every gateway.yaml in deploy/ (the image's, and the ConfigMap's) is accepted by
    /// `mirrorgate check`. The ConfigMap's reads the Secret: the Secret's files are written
    /// where the Deployment mounts them (under a temporary root) and its env is set.
    @Test func everyGatewayConfigurationPassesMirrorgateCheck() async throws {
        let binary = try GatewayProcess.locateBinary()
        let scratch = try TemporaryDirectory(prefix: "deploy-check")
        var checked: [String] = []

        for file in Self.deployFiles(endingWith: ["gateway.yaml"]) {
            let result = try await ManagedProcess.run(binary, arguments: ["check", "--config", Self.deployURL(file).path], timeout: .seconds(60))
            #expect(result.succeeded, "mirrorgate check deploy/\(file):\n\(result.stderr)")
            #expect(result.stdoutText.contains("docker.io"))
            checked.append(file)
        }

        let (configURL, environment) = try Self.configMapAsThePodSeesIt(try Self.manifests(), scratch: scratch)
        let result = try await ManagedProcess.run(binary, arguments: ["check", "--config", configURL.path], environment: environment, timeout: .seconds(60))
        #expect(result.succeeded, "mirrorgate check on the ConfigMap's gateway.yaml:\n\(result.stderr)")
        #expect(result.stdoutText.contains("hub-authenticated"), "\(result.stdoutText)")
        checked.append("k8s/configmap.yaml")

        // Without the Secret's values the same file is refused, so the check above used them.
        #expect(!environment.isEmpty, "the Deployment passes no variable from the Secret")
        let refused = try await ManagedProcess.run(
            binary, arguments: ["check", "--config", configURL.path],
            environment: Dictionary(uniqueKeysWithValues: environment.keys.map { ($0, "") }), timeout: .seconds(60))
        #expect(!refused.succeeded, "mirrorgate check accepted empty Secret values")
        #expect(checked.contains("gateway.yaml"))
    }

    /// The ConfigMap's configuration served the way the pod runs it: root filesystem read-only
    /// (bubblewrap), only the cache directory writable, user 10001 (the image's), HOME unset.
    /// The gateway starts, reports ready on the admin port, and caches a pulled image; only
    /// listen addresses, the storage path and the upstreams (a local registry) are changed.
    @Test func configMapConfigurationServesOnAReadOnlyRootAsAnUnprivilegedUser() async throws {
        let bwrap = try Self.program("bwrap")
        let binary = try GatewayProcess.locateBinary()
        let manifests = try Self.manifests()
        let deployment = try Self.manifest(kind: "Deployment", in: manifests)
        let uid = try #require(deployment["spec"]?["template"]?["spec"]?["securityContext"]?["runAsUser"]?.int)
        let gid = deployment["spec"]?["template"]?["spec"]?["securityContext"]?["runAsGroup"]?.int ?? uid
        guard case .mapping(var top)? = try Yams.compose(yaml: Self.configMapGatewayYAML(manifests)) else {
            Issue.record("the ConfigMap's gateway.yaml is not a mapping")
            return
        }
        let skopeo = try Skopeo.locate()
        let fixture = try ImageFixture.make(.ociImage, layerSizes: [1 << 20, 256 << 10])
        try await UpstreamRegistry.with(name: "hub") { upstream in
            try await skopeo.push(fixture, to: upstream.hostPort, repository: "library/app")
            let scratch = try TemporaryDirectory(prefix: "deploy-readonly")
            let data = try scratch.subdirectory("cache")
            let ports = try FreePort.allocate(count: 2)
            top["listen"] = Node("127.0.0.1:\(ports[0])")
            top["admin_listen"] = Node("127.0.0.1:\(ports[1])")
            var storage = try #require(top["storage"]?.mapping)
            storage["path"] = Node(data.path)
            top["storage"] = .mapping(storage)
            top["registries"] = try Yams.compose(yaml: "docker.io:\n  upstreams:\n    - name: local\n      url: \(upstream.url)\n")
            let configURL = scratch.appending("gateway.yaml")
            try Yams.serialize(node: .mapping(top)).write(to: configURL, atomically: true, encoding: .utf8)

            // The unprivileged user must reach the binary and the configuration whatever the
            // permissions of the checkout: both go into the scratch directory, world-readable.
            let executable = scratch.appending("mirrorgate")
            try FileManager.default.copyItem(at: binary, to: executable)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: scratch.path)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: executable.path)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: configURL.path)
            var command = [executable.path, "serve", "--config", configURL.path]
            if getuid() == 0 {
                // As root: drop to the pod's user, which owns the volume (as fsGroup makes it).
                #expect(chown(data.path, uid_t(uid), gid_t(gid)) == 0)
                command = [try Self.program("setpriv").path, "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups"] + command
            }
            let process = try ManagedProcess(
                name: "gateway-readonly", executable: bwrap,
                arguments: [
                    "--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev", "--unshare-pid", "--proc", "/proc",
                    "--bind", data.path, data.path, "--die-with-parent", "--unsetenv", "HOME", "--unsetenv", "TMPDIR",
                    "--chdir", "/", "--",
                ] + command,
                workingDirectory: scratch.url,
                stdoutLog: scratch.appending("gateway.log"))
            do {
                try await process.waitForHTTP("http://127.0.0.1:\(ports[1])/healthz", timeout: .seconds(30))
                let ready = try await HTTPFetch.get("http://127.0.0.1:\(ports[1])/readyz")
                // /readyz stays 200 when the cache is not writable, and says so: demand a plain "ok".
                #expect(ready.status == 200 && ready.text == "ok\n", "/readyz: \(ready.status) \(ready.text)")
                let pulled = try await skopeo.pull(from: "127.0.0.1:\(ports[0])", repository: "library/app", reference: fixture.tag)
                #expect(pulled.allDigests == fixture.allDigests)
                let cached = CacheInspection(root: data).blobDigests()
                #expect(Set(fixture.blobs.map(\.digest)).isSubset(of: cached), "not cached: \(cached)")
                #expect(CacheInspection(root: data).verifyBlobs().isEmpty)
                let owners = try FileManager.default.attributesOfItem(atPath: CacheInspection(root: data).metadataURL.path)[.ownerAccountID] as? NSNumber
                if getuid() == 0 { #expect(owners?.intValue == uid) }
                let stillReady = try await HTTPFetch.get("http://127.0.0.1:\(ports[1])/readyz")
                #expect(stillReady.status == 200 && stillReady.text == "ok\n", "/readyz: \(stillReady.text)")
                #expect(!process.stdoutText().contains("Read-only file system"), "\(process.stdoutText())")
            } catch {
                Issue.record("\(error)\n\(process.logTail())")
            }
            await process.stop()
        }
    }

    // MARK: - Dockerfile

    struct DockerfileParse: Decodable {
        struct Instruction: Decodable {
            let instruction: String
            let value: String
            let line: Int
        }
        let parentImages: [String]
        let instructions: [Instruction]

        enum CodingKeys: String, CodingKey {
            case parentImages = "parent_images"
            case instructions
        }
    }

    /// deploy/Dockerfile (parsed by dockerfile-parse): a Swift build stage and a slim Debian
    /// runtime stage; the runtime runs as the non-root user the Deployment names, declares the
    /// storage path as a VOLUME, EXPOSEs the configured ports, starts `serve` with the config it
    /// copies; every library `ldd` lists for the built binary is either linked statically
    /// (`--static-swift-stdlib`) or comes from a package the runtime stage installs or that
    /// bookworm-slim has; and the .dockerignore lets in what the COPYs need.
    @Test func dockerfileBuildsASlimNonRootImageMatchingTheConfiguration() async throws {
        let parsed = try JSONDecoder().decode(DockerfileParse.self, from: try await Self.runPython("dockerfile", [Self.deployURL("Dockerfile").path]))
        var stages: [[DockerfileParse.Instruction]] = []
        for instruction in parsed.instructions {
            if instruction.instruction == "FROM" { stages.append([]) }
            if !stages.isEmpty { stages[stages.count - 1].append(instruction) }
        }
        try #require(stages.count >= 2, "not a multi-stage Dockerfile")
        #expect(parsed.parentImages.first?.hasPrefix("swift:") == true, "\(parsed.parentImages)")
        let runtimeImage = parsed.parentImages.last ?? ""
        #expect(runtimeImage.hasPrefix("debian:") && runtimeImage.hasSuffix("-slim"), "\(runtimeImage)")
        let stageNames = stages.dropLast().compactMap { stage -> String? in
            let words = stage[0].value.split(separator: " ")
            return words.count == 3 && words[1].lowercased() == "as" ? String(words[2]) : nil
        }
        let build = stages[0]
        let runtime = stages[stages.count - 1]
        func values(_ name: String, in stage: [DockerfileParse.Instruction]) -> [String] {
            stage.filter { $0.instruction == name }.map(\.value)
        }
        func jsonArray(_ value: String) -> [String]? {
            (try? JSONSerialization.jsonObject(with: Data(value.utf8))) as? [String]
        }

        let buildRun = values("RUN", in: build).joined(separator: "\n")
        #expect(buildRun.contains("swift build -c release --product mirrorgate --static-swift-stdlib"))
        #expect(try Self.text(Self.packageRoot.appendingPathComponent("Package.swift")).contains(".executable(name: \"mirrorgate\""))

        // Non-root user: numeric (for runAsNonRoot), the Deployment's.
        let user = try #require(values("USER", in: runtime).last)
        let ids = user.split(separator: ":").map { Int($0) }
        let uid = try #require(ids.first ?? nil, "USER \(user) is not numeric")
        #expect(uid != 0)
        let deployment = try Self.manifest(kind: "Deployment", in: try Self.manifests())
        #expect(deployment["spec"]?["template"]?["spec"]?["securityContext"]?["runAsUser"]?.int == uid)
        if ids.count == 2 { #expect(deployment["spec"]?["template"]?["spec"]?["securityContext"]?["runAsGroup"]?.int == ids[1]) }

        // The configuration it copies and runs, its storage path as the VOLUME, its ports EXPOSEd.
        let entrypoint = jsonArray(values("ENTRYPOINT", in: runtime).last ?? "") ?? []
        let cmd = jsonArray(values("CMD", in: runtime).last ?? "") ?? []
        let argv = entrypoint + cmd
        #expect(argv.first == "/usr/local/bin/mirrorgate")
        #expect(argv.dropFirst().first == "serve")
        let configPath = try #require(argv.firstIndex(of: "--config").map { argv[$0 + 1] })
        let copies = values("COPY", in: runtime)
        #expect(copies.contains("deploy/gateway.yaml \(configPath)"), "\(copies)")
        let imageConfig = try Self.yamlDocument(Self.deployURL("gateway.yaml"))
        let configMapConfig = try #require(try Yams.compose(yaml: Self.configMapGatewayYAML(Self.manifests())))
        let volumes = values("VOLUME", in: runtime).flatMap { jsonArray($0) ?? $0.split(separator: " ").map(String.init) }
        for config in [imageConfig, configMapConfig] {
            let path = try #require(config["storage"]?["path"]?.string)
            #expect(volumes.contains(path), "storage.path \(path) is not a VOLUME (\(volumes))")
        }
        let exposed = Set(values("EXPOSE", in: runtime).flatMap { $0.split(separator: " ") }.compactMap { Int($0.split(separator: "/")[0]) })
        for config in [imageConfig, configMapConfig] {
            for key in ["listen", "admin_listen"] {
                if let port = Self.port(config[key]?.string) { #expect(exposed.contains(port), "\(key) port \(port) not EXPOSEd (\(exposed))") }
            }
        }
        for copy in copies where copy.hasPrefix("--from=") {
            let stage = String(copy.dropFirst("--from=".count).prefix { $0 != " " })
            #expect(stageNames.contains(stage), "COPY --from=\(stage) names no earlier stage (\(stageNames))")
        }

        // Shared libraries: Swift's are linked in; the rest come from Debian packages the image has.
        let runtimeRun = values("RUN", in: runtime).joined(separator: "\n")
        let installed = Set(runtimeRun.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        // Packages every debian:bookworm-slim image has (Priority: required, and apt's dependencies).
        var present: Set<String> = ["libc6", "libgcc-s1", "libstdc++6", "zlib1g", "liblzma5"]
        // apt installs a package's dependencies with it (libxml2 brings libicu72).
        for package in installed where package.hasPrefix("lib") {
            let depends = try await ManagedProcess.run(try Self.program("dpkg-query"), arguments: ["-W", "-f", "${Depends}", package], timeout: .seconds(30))
            guard depends.succeeded else { continue }
            for clause in depends.stdoutText.split(separator: ",") {
                if let name = clause.split(separator: " ").first.map({ String($0.split(separator: ":")[0]) }) { present.insert(name) }
            }
        }
        #expect(installed.contains("ca-certificates"), "https:// upstreams need the trust roots")
        let ldd = try await ManagedProcess.run(try Self.program("ldd"), arguments: [GatewayProcess.locateBinary().path], timeout: .seconds(60))
        #expect(ldd.succeeded)
        var systemPackages: Set<String> = []
        for line in ldd.stdoutText.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard let arrow = parts.firstIndex(of: "=>"), arrow + 1 < parts.count else { continue }
            let path = String(parts[arrow + 1])
            if path.contains("/lib/swift/") { continue }  // the Swift runtime: --static-swift-stdlib
            var owner: String?
            for candidate in [path, "/usr" + path] {
                let query = try await ManagedProcess.run(try Self.program("dpkg-query"), arguments: ["-S", candidate], timeout: .seconds(30))
                if query.succeeded, let name = query.stdoutText.split(separator: ":").first {
                    owner = String(name)
                    break
                }
            }
            let package = try #require(owner, "no Debian package owns \(path)")
            systemPackages.insert(package)
            #expect(installed.contains(package) || present.contains(package), "\(path) comes from \(package), which the runtime stage does not install")
        }
        #expect(systemPackages.contains("libsqlite3-0"), "ldd lists no SQLite: \(ldd.stdoutText)")

        // Build context: deploy/Dockerfile.dockerignore ignores everything but what is copied.
        let ignore = try Self.text(Self.deployURL("Dockerfile.dockerignore")).split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        #expect(ignore.first == "*")
        let allowed = Set(ignore.filter { $0.hasPrefix("!") }.map { String($0.dropFirst()) })
        for stage in stages {
            for copy in values("COPY", in: stage) where !copy.hasPrefix("--from=") {
                let words = copy.split(separator: " ").map(String.init).filter { !$0.hasPrefix("--") }
                for source in words.dropLast() {
                    let matches = try Self.repositoryPaths(matching: source)
                    #expect(!matches.isEmpty, "COPY \(source): nothing in the repository matches")
                    for match in matches {
                        #expect(allowed.contains(match), "COPY \(match) is excluded by Dockerfile.dockerignore")
                    }
                }
            }
        }
    }

    /// Paths relative to the package root matching `pattern`, where `*` in the last component
    /// matches any run of characters (the only wildcard deploy/Dockerfile uses).
    static func repositoryPaths(matching pattern: String) throws -> [String] {
        let base = (pattern as NSString).deletingLastPathComponent
        let last = (pattern as NSString).lastPathComponent
        let directory = base.isEmpty ? packageRoot : packageRoot.appendingPathComponent(base)
        let prefixes = last.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { name in
            if prefixes.count == 1 { return name == last }
            guard name.hasPrefix(prefixes[0]), name.hasSuffix(prefixes[prefixes.count - 1]) else { return false }
            var rest = Substring(name.dropFirst(prefixes[0].count))
            for part in prefixes.dropFirst().dropLast() {
                guard let range = rest.range(of: part) else { return false }
                rest = rest[range.upperBound...]
            }
            return rest.count >= prefixes[prefixes.count - 1].count
        }
        .filter { name in
            // Ignored files (Package.resolved is local) are not part of a fresh clone.
            !(name == "Package.resolved")
        }
        .map { base.isEmpty ? $0 : base + "/" + $0 }
    }

    // MARK: - systemd

    /// `systemd-analyze verify` accepts the unit (with ExecStart pointed at the built binary:
    /// it checks that the command exists) and prints no warning; the unit is hardened and its
    /// StateDirectory is the storage path of deploy/gateway.yaml, the file it starts with.
    @Test func systemdUnitVerifiesAndWritesOnlyItsStateDirectory() async throws {
        let analyze = try Self.program("systemd-analyze")
        let unitURL = Self.deployURL("systemd/mirrorgate.service")
        let unit = try Self.text(unitURL)
        var settings: [String: [String]] = [:]
        for line in unit.split(separator: "\n") where !line.hasPrefix("#") && !line.hasPrefix("[") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            settings[String(line[..<equals]), default: []].append(String(line[line.index(after: equals)...]))
        }
        for (key, value) in [
            ("DynamicUser", "yes"), ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("StateDirectory", "mirrorgate"), ("CapabilityBoundingSet", ""),
        ] {
            #expect(settings[key]?.last == value, "\(key)=\(value) expected, found \(settings[key] ?? [])")
        }
        let config = try Self.yamlDocument(Self.deployURL("gateway.yaml"))
        let storagePath = try #require(config["storage"]?["path"]?.string)
        #expect(storagePath == "/var/lib/" + (settings["StateDirectory"]?.last ?? ""))
        #expect(settings["ReadWritePaths"]?.last == storagePath)
        let execStart = try #require(settings["ExecStart"]?.last)
        #expect(execStart == "/usr/local/bin/mirrorgate serve --config /etc/mirrorgate/gateway.yaml")

        let scratch = try TemporaryDirectory(prefix: "deploy-systemd")
        let copy = scratch.appending("mirrorgate.service")
        try unit.replacingOccurrences(of: "/usr/local/bin/mirrorgate", with: GatewayProcess.locateBinary().path)
            .write(to: copy, atomically: true, encoding: .utf8)
        let result = try await ManagedProcess.run(analyze, arguments: ["verify", copy.path], timeout: .seconds(60))
        #expect(result.succeeded, "systemd-analyze verify:\n\(result.stderr)")
        #expect(result.stderr.isEmpty, "systemd-analyze verify warns:\n\(result.stderr)")
        // Negative control: a misspelt setting is reported.
        try unit.replacingOccurrences(of: "/usr/local/bin/mirrorgate", with: GatewayProcess.locateBinary().path)
            .replacingOccurrences(of: "ProtectSystem=strict", with: "ProtectSystem=stricter")
            .write(to: copy, atomically: true, encoding: .utf8)
        let broken = try await ManagedProcess.run(analyze, arguments: ["verify", copy.path], timeout: .seconds(60))
        #expect(broken.stderr.contains("stricter"), "\(broken.stderr)")
    }

    // MARK: - Clients

    /// dockerd's daemon.json and the GitLab CI dind service point at the same mirror.
    @Test func dockerdAndGitLabCIUseTheSameMirror() throws {
        let daemon = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.deployURL("clients/dockerd/daemon.json"))) as? [String: Any])
        let mirrors = daemon["registry-mirrors"] as? [String] ?? []
        #expect(mirrors == ["http://gateway:5000"])
        #expect(daemon["insecure-registries"] as? [String] == ["gateway:5000"])
        let ci = try Self.yamlDocument(Self.deployURL("clients/gitlab-ci/gitlab-ci.yml"))
        var commands: [[String]] = []
        for (_, job) in ci.mapping ?? [:] {
            for service in job["services"]?.sequence ?? [] where service["name"]?.string?.contains("dind") == true {
                commands.append(service["command"]?.sequence?.compactMap(\.string) ?? [])
            }
        }
        try #require(commands.count == 1, "expected one dind service")
        let command = commands[0]
        let mirror = try #require(command.firstIndex(of: "--registry-mirror").map { command[$0 + 1] })
        #expect(mirrors.contains(mirror))
        #expect(command.firstIndex(of: "--insecure-registry").map { command[$0 + 1] } == "gateway:5000")
    }

    /// containerd (a real daemon and `ctr content fetch --hosts-dir`) with deploy's hosts.toml
    /// files, only the gateway's address and docker.io's fallback `server` (a closed local
    /// port, so nothing leaves the machine) replaced: docker.io through its own file, and
    /// another registry through `_default`, both served by the gateway.
    @Test func containerdHostsFilesPullThroughTheGateway() async throws {
        let skopeo = try Skopeo.locate()
        let hubImage = try ImageFixture.make(.ociImage, layerSizes: [512 << 10])
        let otherImage = try ImageFixture.make(.ociImage, layerSizes: [256 << 10])
        try await UpstreamRegistry.with(name: "hub") { hub in
            try await UpstreamRegistry.with(name: "other") { other in
                try await skopeo.push(hubImage, to: hub.hostPort, repository: "library/app")
                try await skopeo.push(otherImage, to: other.hostPort, repository: "org/tool")
                try await ContainerdDaemon.with { containerd in
                    // The second registry's name is a local address whose port is closed, so
                    // containerd's own fallback to it (no `server` in _default) goes nowhere.
                    let otherRegistry = "127.0.0.1:\(containerd.closedPort)"
                    var config = GatewayConfig.upstreams([hub.url])
                    config.setRegistry(otherRegistry, upstreams: [(name: "other", url: other.url)])
                    try await GatewayProcess.with(config) { gateway in
                        let hostsDir = try containerd.directory.subdirectory("deploy-certs.d")
                        for name in ["docker.io", "_default"] {
                            var text = try Self.text(Self.deployURL("clients/containerd/certs.d/\(name)/hosts.toml"))
                            #expect(text.contains("[host.\"http://gateway:5000\"]"))
                            text = text.replacingOccurrences(of: "http://gateway:5000", with: gateway.url)
                            if name == "docker.io" {
                                #expect(text.contains("server = \"https://registry-1.docker.io\""))
                                text = text.replacingOccurrences(of: "https://registry-1.docker.io", with: containerd.closedServerURL)
                            } else {
                                #expect(!text.contains("server ="))
                            }
                            let directory = hostsDir.appendingPathComponent(name, isDirectory: true)
                            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                            try text.write(to: directory.appendingPathComponent("hosts.toml"), atomically: true, encoding: .utf8)
                        }
                        let fromHub = try await containerd.fetch(ref: "docker.io/library/app:\(hubImage.tag)", hostsDir: hostsDir, platform: nil)
                        #expect(fromHub.succeeded, "\(fromHub.stderr)")
                        let fromOther = try await containerd.fetch(ref: "\(otherRegistry)/org/tool:\(otherImage.tag)", hostsDir: hostsDir, platform: nil)
                        #expect(fromOther.succeeded, "\(fromOther.stderr)")
                        let stored = try await containerd.contentDigests()
                        #expect(hubImage.allDigests.isSubset(of: stored))
                        #expect(otherImage.allDigests.isSubset(of: stored))
                        try containerd.verifyContentStore()
                        #expect(gateway.logText().contains("registry=\(otherRegistry)"))
                    }
                }
            }
        }
    }

    /// skopeo (containers/image, as CRI-O and podman use it) with deploy's registries.conf:
    /// the gateway address and each registry's own location (a closed local port) replaced,
    /// an image of every configured registry prefix pulls through the gateway's path routing.
    @Test func crioRegistriesConfPullsThroughTheGateway() async throws {
        let skopeo = try Skopeo.locate()
        let conf = try await Self.parseTOML(Self.deployURL("clients/cri-o/registries.conf"))
        let registries = try #require(conf["registry"] as? [[String: Any]])
        let prefixes = registries.compactMap { $0["prefix"] as? String }
        let configured = Set(try #require(try Yams.compose(yaml: Self.configMapGatewayYAML(Self.manifests())))["registries"]?.mapping?.keys.compactMap(\.string) ?? [])
        #expect(Set(prefixes).isSubset(of: configured), "registries.conf mirrors \(prefixes), the gateway serves \(configured)")
        for registry in registries {
            let mirrors = registry["mirror"] as? [[String: Any]] ?? []
            #expect(mirrors.map { $0["location"] as? String } == ["gateway:5000/\(registry["prefix"] as? String ?? "")"])
        }

        let image = try ImageFixture.make(.ociImage, layerSizes: [256 << 10])
        let closed = try FreePort.allocate()  // nothing listens there
        try await UpstreamRegistry.with(name: "upstream") { upstream in
            try await skopeo.push(image, to: upstream.hostPort, repository: "library/app")
            try await skopeo.push(image, to: upstream.hostPort, repository: "org/app")
            var config = GatewayConfig.upstreams([upstream.url])
            for prefix in prefixes where prefix != "docker.io" {
                config.setRegistry(prefix, upstreams: [(name: "local", url: upstream.url)])
            }
            try await GatewayProcess.with(config) { gateway in
                let scratch = try TemporaryDirectory(prefix: "deploy-crio")
                var text = try Self.text(Self.deployURL("clients/cri-o/registries.conf"))
                text = text.replacingOccurrences(of: "gateway:5000", with: gateway.hostPort)
                for registry in registries {
                    let location = try #require(registry["location"] as? String)
                    text = text.replacingOccurrences(of: "location = \"\(location)\"", with: "location = \"127.0.0.1:\(closed)\"")
                }
                let confURL = scratch.appending("registries.conf")
                try text.write(to: confURL, atomically: true, encoding: .utf8)
                // skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF and reads /etc/containers/registries.conf
                // unless given the (hidden) --registries-conf flag. A local-only probe proves the file
                // is read before any pull could fall back to the real registries.
                let environment = [
                    "HOME": skopeo.home.path,
                    "XDG_RUNTIME_DIR": skopeo.home.appending("run").path,
                    "XDG_CONFIG_HOME": skopeo.home.appending("config").path,
                    "CONTAINERS_REGISTRIES_CONF": confURL.path,
                    "REGISTRY_AUTH_FILE": skopeo.home.appending("run/auth.json").path,
                    "http_proxy": "", "https_proxy": "", "HTTP_PROXY": "", "HTTPS_PROXY": "",
                    "no_proxy": "*", "NO_PROXY": "*",
                ]
                let global = ["--registries-conf", confURL.path, "--insecure-policy", "--tmpdir", skopeo.home.appending("tmp").path]
                let probe = try await ManagedProcess.run(
                    skopeo.executable, arguments: global + ["--debug", "inspect", "--tls-verify=false", "docker://127.0.0.1:\(closed)/probe:v1"],
                    environment: environment, timeout: .seconds(60))
                let loaded = probe.stderr.split(separator: "\n").filter { $0.contains("Loading registries configuration") }
                try #require(loaded.contains { $0.contains(confURL.path) }, "skopeo did not read \(confURL.path):\n\(probe.stderr)")
                for prefix in prefixes {
                    let repository = prefix == "docker.io" ? "library/app" : "org/app"
                    let destination = scratch.appending("pulled-\(prefix)", isDirectory: true)
                    // No --src-tls-verify=false: `insecure = true` in the file is what allows plain HTTP.
                    let result = try await ManagedProcess.run(
                        skopeo.executable,
                        arguments: global + [
                            "copy", "--preserve-digests", "--src-no-creds",
                            "docker://\(prefix)/\(repository):\(image.tag)", "dir:\(destination.path)",
                        ],
                        environment: environment, timeout: .seconds(120))
                    #expect(result.succeeded, "skopeo via registries.conf, \(prefix):\n\(result.stderr)")
                    if result.succeeded {
                        #expect(try Skopeo.verifyLayout(destination).allDigests == image.allDigests)
                    }
                }
                #expect(gateway.logText().contains("registry=ghcr.io") || !prefixes.contains("ghcr.io"))
            }
        }
    }
}
