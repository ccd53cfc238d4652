import Foundation
import MirrorGateConfig
import RegistryModel

/// Whole `gateway.yaml` documents: the loader never traps; a loaded configuration renders its
/// routing plan and keeps its bounds; every error names a key path, or the file and a line.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigLoader(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let yaml = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let loader = ConfigLoader(environment: ["USER": "alice", "TOKEN": "s3cr3t", "EMPTY": ""], readFile: { path in
        guard path == "/run/secrets/hub" else { throw CocoaError(.fileReadNoSuchFile) }
        return "pw\n"
    })
    do throws(ConfigError) {
        let config = try loader.load(yaml: yaml)
        precondition(!config.routingPlan.isEmpty)
        precondition(config.registries.contains { $0.key == config.defaultRegistry })
        precondition(config.storage.maxSize >= 1 << 20 && config.tags.ttl <= ConfigValues.maxDuration)
        for upstream in config.registries.flatMap(\.upstreams) where !upstream.prefix.isEmpty {
            precondition((try? RepositoryName(parsing: upstream.prefix)) != nil)
        }
    } catch {
        switch error {
        case .syntax(let file, let line, _):
            precondition(file == "gateway.yaml" && line != nil, "\(error)")
        case .invalid(let key, _, _), .missingEnvironmentVariable(_, let key, _), .unreadableSecretFile(_, let key, _, _):
            precondition(!key.isEmpty && error.description.hasPrefix(key), "\(error)")
        case .unreadable:
            preconditionFailure("load(yaml:) reads no file")
        }
    }
    return 0
}
