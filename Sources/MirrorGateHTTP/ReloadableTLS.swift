import Foundation
import Logging
import MirrorGateConfig
import NIOCore
import NIOSSL
import Synchronization

/// The listener's certificate and key, re-read on demand (SIGHUP) without a restart.
///
/// The server's `TLSConfiguration` carries an `sslContextCallback` that hands every new
/// handshake the current chain and key; connections already open keep theirs. A reload that
/// fails (missing file, key not matching) keeps the previous pair and logs why.
public final class ReloadableTLS: Sendable {
    public enum LoadError: Error, CustomStringConvertible {
        case certificate(path: String, reason: String)
        case key(path: String, reason: String)

        public var description: String {
            switch self {
            case .certificate(let path, let reason): "tls.cert: cannot load \(path): \(reason)"
            case .key(let path, let reason): "tls.key: cannot load \(path): \(reason)"
            }
        }
    }

    struct Pair: Sendable {
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
    }

    public let config: ListenerTLSConfig
    private let current: Mutex<Pair>
    private let logger: Logger

    public init(config: ListenerTLSConfig, logger: Logger) throws(LoadError) {
        self.config = config
        self.logger = logger
        self.current = Mutex(try Self.load(config))
    }

    /// Re-reads the files; new handshakes use them from now on.
    public func reload() {
        do {
            let pair = try Self.load(config)
            current.withLock { $0 = pair }
            logger.notice("TLS certificate reloaded", metadata: ["cert": "\(config.certificatePath)", "serial": "\(Self.serialHex(pair.chain.first))"])
        } catch {
            logger.error("TLS certificate not reloaded; the previous one stays in use", metadata: ["error": "\(error)"])
        }
    }

    /// The serial number of the certificate new handshakes get (for logs and tests).
    public var serialNumber: [UInt8] { current.withLock { $0.chain.first?.serialNumber ?? [] } }

    /// A server configuration whose handshakes always use the current pair.
    public func serverConfiguration() -> TLSConfiguration {
        let pair = current.withLock { $0 }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: pair.chain.map { .certificate($0) }, privateKey: .privateKey(pair.key))
        tls.minimumTLSVersion = .tlsv12
        tls.applicationProtocols = ["http/1.1"]
        tls.sslContextCallback = { [self] _, promise in
            let pair = current.withLock { $0 }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = pair.chain.map { .certificate($0) }
            override.privateKey = .privateKey(pair.key)
            promise.succeed(override)
        }
        return tls
    }

    static func load(_ config: ListenerTLSConfig) throws(LoadError) -> Pair {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(config.certificatePath)
        } catch {
            throw .certificate(path: config.certificatePath, reason: "\(error)")
        }
        guard !chain.isEmpty else { throw .certificate(path: config.certificatePath, reason: "no PEM certificate in the file") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: config.keyPath, format: .pem)
        } catch {
            throw .key(path: config.keyPath, reason: "\(error)")
        }
        // Refuse a key that does not belong to the certificate now, not at the first handshake.
        do {
            var probe = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            probe.minimumTLSVersion = .tlsv12
            _ = try NIOSSLContext(configuration: probe)
        } catch {
            throw .key(path: config.keyPath, reason: "does not match the certificate in \(config.certificatePath) (\(error))")
        }
        return Pair(chain: chain, key: key)
    }

    static func serialHex(_ cert: NIOSSLCertificate?) -> String {
        guard let cert else { return "" }
        return cert.serialNumber.map { String(format: "%02x", $0) }.joined()
    }
}
