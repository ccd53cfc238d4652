import ArgumentParser
import Logging
import MirrorGateConfig
import MirrorGateCore

/// `mirrorgate gc`: one reconciliation and eviction pass over the cache, by hand.
struct GCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Reconcile the cache with its metadata and evict down to about 90 % of storage.max_size."
    )

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        var logger = Logger(label: "mirrorgate")
        logger.logLevel = .warning
        let config: GatewayConfig
        do {
            config = try ConfigLoader().load(file: options.config)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let cache: GatewayComponents.Cache
        do {
            cache = try await GatewayComponents.openCache(config, role: "gc", logger: logger, reconcileNow: true)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let pass: CacheJanitor.Pass
        do {
            let before = try await cache.metadata.totalSize()
            let target = before > config.storage.maxSize ? config.storage.maxSize / 10 * 9 : before
            pass = try await cache.janitor.evict(downTo: target)
            try await cache.shutdown()
        } catch {
            try? await cache.shutdown()
            throw error
        }
        print("freed \(pass.freedBytes) bytes in \(pass.freedObjects) objects; cache now \(pass.sizeAfter) of \(config.storage.maxSize) bytes (\(config.storage.path))")
    }
}
