import Foundation
import Testing
import Yams

/// `deploy/k8s-replicas`, the variant that runs three replicas sharing a bucket and a PostgreSQL
/// database: it validates against the Kubernetes schema, its objects agree with each other and
/// with the configuration they carry (the replicas spread across nodes, one is disrupted at a
/// time, each advertises its own pod IP, the peer port stays inside the Deployment), and
/// `mirrorgate check` accepts that configuration with the Secrets' values.
@Suite(.serialized)
struct DeployReplicasTests {
    static let directory = DeployTests.deployDirectory.appendingPathComponent("k8s-replicas", isDirectory: true)

    @Test func kustomizationListsEveryManifestAndTheyValidate() async throws {
        let kustomization = try DeployTests.yamlDocument(Self.directory.appendingPathComponent("kustomization.yaml"))
        let resources = (kustomization["resources"]?.sequence.map { Array($0) } ?? []).compactMap(\.string)
        let manifests = try DeployTests.manifests(in: Self.directory)
        #expect(Set(resources) == Set(manifests.keys), "resources: \(resources) vs files: \(manifests.keys.sorted())")
        let namespace = try #require(kustomization["namespace"]?.string)
        #expect(try DeployTests.manifest(kind: "Namespace", in: manifests)["metadata"]?["name"]?.string == namespace)
        let kinds = Set(manifests.values.flatMap { $0 }.compactMap { $0["kind"]?.string })
        #expect(kinds.isSuperset(of: ["ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"]), "\(kinds)")
        // No claim: nothing here is ReadWriteOnce.
        #expect(!kinds.contains("PersistentVolumeClaim"))

        let validator = try DeployTests.tool("kubernetes-validate")
        let files = manifests.keys.sorted().map { Self.directory.appendingPathComponent($0).path }
        for version in ["1.29.0", "1.37.0"] {
            let result = try await ManagedProcess.run(validator, arguments: ["--strict", "-k", version] + files, timeout: .seconds(120))
            #expect(result.succeeded, "kubernetes-validate \(version):\n\(result.stdoutText)\(result.stderr)")
            for file in files {
                #expect((result.stdoutText + result.stderr).contains("\(file) passed"), "\(file) against \(version)")
            }
        }
    }

    @Test func replicasSpreadRollOneAtATimeAndKeepThePeerPortInside() throws {
        let manifests = try DeployTests.manifests(in: Self.directory)
        let deployment = try DeployTests.manifest(kind: "Deployment", in: manifests)
        let spec = try #require(deployment["spec"])
        let pod = try #require(spec["template"]?["spec"])
        let container = try DeployTests.container(deployment)
        let config = try #require(try Yams.compose(yaml: DeployTests.configMapGatewayYAML(manifests)))
        let podLabels = try #require(spec["template"]?["metadata"]?["labels"]?.mapping)
        func selects(_ selector: Node?) -> Bool {
            guard let labels = selector?["matchLabels"]?.mapping, !labels.isEmpty else { return false }
            return labels.allSatisfy { podLabels[$0.key] == $0.value }
        }

        #expect(spec["replicas"]?.int == 3)
        #expect(spec["strategy"]?["type"]?.string == "RollingUpdate")
        // Required anti-affinity per node: a surge pod would find no node on a 3-node cluster.
        let antiAffinity = try #require(pod["affinity"]?["podAntiAffinity"]?["requiredDuringSchedulingIgnoredDuringExecution"]?.sequence?.first)
        #expect(antiAffinity["topologyKey"]?.string == "kubernetes.io/hostname")
        #expect(selects(antiAffinity["labelSelector"]), "the anti-affinity does not select the replicas")
        #expect(spec["strategy"]?["rollingUpdate"]?["maxSurge"]?.int == 0)
        #expect(spec["strategy"]?["rollingUpdate"]?["maxUnavailable"]?.int == 1)

        let budget = try DeployTests.manifest(kind: "PodDisruptionBudget", in: manifests)
        #expect(selects(budget["spec"]?["selector"]), "the PodDisruptionBudget does not select the replicas")
        let maxUnavailable = budget["spec"]?["maxUnavailable"]?.int
        let minAvailable = budget["spec"]?["minAvailable"]?.int
        #expect(maxUnavailable == 1 || minAvailable == 2, "a disruption may take more than one of three replicas")

        // Shared state: PostgreSQL for metadata, a bucket (or a ReadWriteMany volume) for blobs.
        #expect(config["metadata"]?["backend"]?.string == "postgres")
        #expect(config["storage"]?["backend"]?.string == "s3")

        // Each replica advertises its own pod IP, on the port it serves peers on.
        var ports: [String: Int] = [:]
        for port in container["ports"]?.sequence ?? [] {
            if let name = port["name"]?.string, let number = port["containerPort"]?.int { ports[name] = number }
        }
        let peerPort = try #require(ports["peer"])
        #expect(DeployTests.port(config["cluster"]?["peer_listen"]?.string) == peerPort)
        let advertise = try #require(config["cluster"]?["advertise_url"]?.string)
        #expect(advertise == "http://${POD_IP}:\(peerPort)", "\(advertise)")
        let podIP = (container["env"]?.sequence ?? []).first { $0["name"]?.string == "POD_IP" }
        #expect(podIP?["valueFrom"]?["fieldRef"]?["fieldPath"]?.string == "status.podIP", "POD_IP does not come from the Downward API")

        // The Service carries the registry and admin ports, never the peer port.
        let service = try DeployTests.manifest(kind: "Service", in: manifests)
        let serviceSelector = service["spec"]?["selector"]?.mapping ?? [:]
        #expect(!serviceSelector.isEmpty && serviceSelector.allSatisfy { podLabels[$0.key] == $0.value }, "the Service does not select the replicas")
        let servicePorts = (service["spec"]?["ports"]?.sequence ?? []).map { ($0["targetPort"]?.string, $0["port"]?.int) }
        #expect(!servicePorts.contains { $0.0 == "peer" || $0.1 == peerPort }, "the Service exposes the peer port")
        #expect(servicePorts.contains { $0.0 == "registry" })

        // The NetworkPolicy: the peer port only from the Deployment's own pods in this namespace.
        let policy = try DeployTests.manifest(kind: "NetworkPolicy", in: manifests)
        #expect(selects(policy["spec"]?["podSelector"]), "the NetworkPolicy does not apply to the replicas")
        #expect(policy["spec"]?["policyTypes"]?.sequence?.compactMap(\.string).contains("Ingress") == true)
        var peerRules = 0
        for rule in policy["spec"]?["ingress"]?.sequence ?? [] {
            let rulePorts = (rule["ports"]?.sequence ?? []).map { $0["port"]?.string ?? $0["port"]?.int.map(String.init) ?? "" }
            guard rulePorts.contains("peer") || rulePorts.contains(String(peerPort)) || rulePorts.isEmpty else { continue }
            peerRules += 1
            let sources = rule["from"]?.sequence ?? []
            #expect(!sources.isEmpty, "a rule opens the peer port to everyone")
            for source in sources {
                #expect(source["namespaceSelector"] == nil && source["ipBlock"] == nil, "a rule opens the peer port beyond the namespace")
                #expect(selects(source["podSelector"]), "a rule opens the peer port to other pods")
            }
        }
        #expect(peerRules == 1)

        // Every secret file the configuration reads is an item of a mounted Secret, and every
        // Secret a variable names has that key.
        let secrets = DeployTests.objects(kind: "Secret", in: manifests)
        var files: Set<String> = []
        var mounts: [String: String] = [:]
        for mount in container["volumeMounts"]?.sequence ?? [] {
            if let name = mount["name"]?.string, let path = mount["mountPath"]?.string { mounts[name] = path }
        }
        for volume in pod["volumes"]?.sequence ?? [] {
            guard let source = volume["secret"], let mount = mounts[volume["name"]?.string ?? ""] else { continue }
            let keys = Set((secrets[source["secretName"]?.string ?? ""]?["stringData"]?.mapping ?? [:]).keys.compactMap(\.string))
            for item in source["items"]?.sequence ?? [] {
                #expect(keys.contains(item["key"]?.string ?? ""), "volume \(volume["name"]?.string ?? "") names a missing Secret key")
                files.insert(mount + "/" + (item["path"]?.string ?? ""))
            }
        }
        let wanted = [
            config["metadata"]?["postgres"]?["password_file"]?.string, config["storage"]?["s3"]?["secret_access_key_file"]?.string,
            config["cluster"]?["peer_token_file"]?.string,
        ]
        for file in wanted {
            let file = try #require(file, "the configuration reads a secret inline instead of from a file")
            #expect(files.contains(file), "\(file) is not a file of a mounted Secret")
        }
        for variable in container["env"]?.sequence ?? [] {
            guard let ref = variable["valueFrom"]?["secretKeyRef"] else { continue }
            let keys = Set((secrets[ref["name"]?.string ?? ""]?["stringData"]?.mapping ?? [:]).keys.compactMap(\.string))
            #expect(keys.contains(ref["key"]?.string ?? ""), "env \(variable["name"]?.string ?? "") names a missing Secret key")
        }
        // storage.path is a volume of its own (the root filesystem is read-only).
        #expect(mounts.values.contains(config["storage"]?["path"]?.string ?? "-"))
        #expect(container["securityContext"]?["readOnlyRootFilesystem"]?.bool == true)
    }

    @Test func theConfigurationPassesMirrorgateCheckWithTheSecrets() async throws {
        let binary = try GatewayProcess.locateBinary()
        let scratch = try TemporaryDirectory(prefix: "deploy-replicas-check")
        let manifests = try DeployTests.manifests(in: Self.directory)
        let (config, environment) = try DeployTests.configMapAsThePodSeesIt(
            manifests, scratch: scratch, fieldValues: ["status.podIP": "10.1.2.3"])
        let result = try await ManagedProcess.run(binary, arguments: ["check", "--config", config.path], environment: environment, timeout: .seconds(60))
        #expect(result.succeeded, "mirrorgate check:\n\(result.stderr)")
        #expect(result.stdoutText.contains("postgres://mirrorgate@"), "\(result.stdoutText)")
        #expect(result.stdoutText.contains("http://10.1.2.3:5001"), "the advertised URL is not the pod's: \(result.stdoutText)")
        // Without the pod IP the advertised URL is refused.
        var noIP = environment
        noIP["POD_IP"] = ""
        let refused = try await ManagedProcess.run(binary, arguments: ["check", "--config", config.path], environment: noIP, timeout: .seconds(60))
        #expect(!refused.succeeded, "mirrorgate check accepted an empty POD_IP")
    }
}
