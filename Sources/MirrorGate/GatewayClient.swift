import AsyncHTTPClient
import Crypto
import Foundation
import MirrorGateStorage
import NIOCore
import RegistryModel

/// Talks to a running gateway for `mirrorgate status`, `report` and `warm`: the status and
/// report documents, and the pull side of the registry API on the same port. Every registry
/// request carries `?ns=<registry>` (as containerd sends it), so the gateway routes it to
/// the image's registry whatever its `default_registry` is.
struct GatewayClient: Sendable {
    /// A request the gateway did not answer as wanted, or could not be sent.
    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// A manifest as the gateway served it, its digest checked.
    struct FetchedManifest: Sendable {
        let bytes: Data
        let mediaType: String
        let digest: RegistryModel.Digest
    }

    /// The gateway's base URL without a trailing slash, e.g. `http://127.0.0.1:5000`.
    let baseURL: String
    private let client: HTTPClient

    /// Largest manifest accepted (distribution's limit).
    static let maxManifestBytes = 4 << 20

    init(baseURL: String) throws {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base), let scheme = url.scheme, ["http", "https"].contains(scheme.lowercased()), url.host != nil else {
            throw Failure("invalid --url '\(baseURL)': expected http://HOST:PORT or https://HOST:PORT")
        }
        self.baseURL = base
        var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(5), read: .seconds(60)))
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 16)
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connections.
    func shutdown() async {
        try? await client.shutdown()
    }

    // MARK: - Status

    /// The body of `GET /_mirrorgate/status.json`.
    func statusDocument() async throws -> Data {
        try await document("/_mirrorgate/status.json", what: "status.json")
    }

    /// The body of `GET /_mirrorgate/report.json?since=…&by=…`.
    func reportDocument(since: String, by: String) async throws -> Data {
        let query = "since=\(since.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? since)&by=\(by)"
        return try await document("/_mirrorgate/report.json?\(query)", what: "report.json", limit: 64 << 20)
    }

    private func document(_ path: String, what: String, limit: Int = 16 << 20) async throws -> Data {
        let url = baseURL + path
        let response = try await send(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await Self.collect(response.body, limit: limit, what: what)
        guard response.status.code == 200 else {
            throw Failure("\(url) answered \(response.status.code) \(response.status.reasonPhrase)\(Self.errorDetail(body))")
        }
        return body
    }

    // MARK: - Registry API

    /// `GET /v2/<name>/manifests/<reference>?ns=<registry>` with the full `Accept` list. The
    /// digest is computed from the bytes; it must equal the digest asked for, and the
    /// `Docker-Content-Digest` header when the gateway sends one.
    func manifest(_ image: ImageReference, reference: Reference) async throws -> FetchedManifest {
        var request = HTTPClientRequest(url: registryURL(image, "manifests", reference.description))
        request.headers.add(name: "Accept", value: MediaType.upstreamManifestAccept)
        let response = try await send(request, timeout: .seconds(120))
        let body = try await Self.collect(response.body, limit: Self.maxManifestBytes, what: "manifest")
        guard response.status.code == 200 else {
            throw Failure("manifest \(reference): \(response.status.code) \(response.status.reasonPhrase)\(Self.errorDetail(body))")
        }
        let digest = RegistryModel.Digest(algorithm: .sha256, hex: Self.hex(SHA256.hash(data: body)))
        if let wanted = reference.digest, wanted != digest {
            throw Failure("manifest \(wanted) was answered with content hashing to \(digest)")
        }
        if let header = response.headers.first(name: "Docker-Content-Digest"), header != digest.description,
           header.hasPrefix("sha256:") {
            throw Failure("manifest \(reference): Docker-Content-Digest says \(header) but the content hashes to \(digest)")
        }
        let contentType = response.headers.first(name: "Content-Type")?
            .split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return FetchedManifest(bytes: body, mediaType: contentType, digest: digest)
    }

    /// `GET /v2/<name>/blobs/<digest>?ns=<registry>`, streamed and discarded while it is
    /// hashed; `progress` is called with each chunk's length. Fails unless the content is
    /// exactly `size` bytes hashing to `digest`.
    func blob(_ image: ImageReference, digest: RegistryModel.Digest, size: Int64, progress: @Sendable (Int) -> Void) async throws {
        let response = try await send(HTTPClientRequest(url: registryURL(image, "blobs", digest.description)), timeout: .hours(6))
        guard response.status.code == 200 else {
            let body = try? await Self.collect(response.body, limit: 64 << 10, what: "error")
            throw Failure("blob \(digest): \(response.status.code) \(response.status.reasonPhrase)\(Self.errorDetail(body ?? Data()))")
        }
        // The gateway's own streaming hasher: the algorithm the digest names, nothing else.
        var hasher = ContentHasher(digest.algorithm)
        for try await chunk in response.body {
            hasher.update(chunk)
            progress(chunk.readableBytes)
        }
        try Self.check(digest, size: size, received: Int64(hasher.count), hex: hasher.finalize().hex)
    }

    private static func check(_ digest: RegistryModel.Digest, size: Int64, received: Int64, hex: String) throws {
        guard received == size else {
            throw Failure("blob \(digest): received \(received) bytes, the manifest says \(size)")
        }
        guard hex == digest.hex else {
            throw Failure("blob \(digest): content hashes to \(digest.algorithm.rawValue):\(hex)")
        }
    }

    // MARK: - Helpers

    private func registryURL(_ image: ImageReference, _ kind: String, _ reference: String) -> String {
        "\(baseURL)/v2/\(image.repository)/\(kind)/\(reference)?ns=\(image.registry)"
    }

    /// Sends `request`; a failure to connect or to get an answer becomes a ``Failure``
    /// naming the gateway.
    private func send(_ request: HTTPClientRequest, timeout: TimeAmount) async throws -> HTTPClientResponse {
        do {
            return try await client.execute(request, timeout: timeout)
        } catch {
            throw Failure("cannot reach the gateway at \(baseURL): \(Self.reason(error))")
        }
    }

    /// A short reason for a failed request: the system's words for a socket error
    /// (`Connection refused`), else the error's description.
    static func reason(_ error: any Error) -> String {
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode))
        }
        if let client = error as? HTTPClientError {
            switch client {
            case .connectTimeout: return "connection timed out"
            case .readTimeout: return "no data for 60 seconds"
            case .deadlineExceeded: return "timed out"
            default: return "\(client)"
            }
        }
        return "\(error)"
    }

    private static func collect(_ body: HTTPClientResponse.Body, limit: Int, what: String) async throws -> Data {
        do {
            var buffer = try await body.collect(upTo: limit)
            return Data(buffer.readBytes(length: buffer.readableBytes) ?? [])
        } catch is NIOTooManyBytesError {
            throw Failure("the \(what) is larger than \(limit) bytes")
        }
    }

    /// `: CODE message` from an OCI error envelope, or the start of a plain body.
    static func errorDetail(_ body: Data) -> String {
        struct Envelope: Decodable {
            struct Entry: Decodable {
                var code: String?
                var message: String?
            }
            var errors: [Entry]
        }
        if let envelope = try? JSONDecoder().decode(Envelope.self, from: body), let first = envelope.errors.first {
            return ": " + [first.code, first.message].compactMap { $0 }.joined(separator: " ")
        }
        let text = String(decoding: body.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "" : ": " + text
    }

    static func hex(_ digest: some Sequence<UInt8>) -> String {
        digest.map { byte in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
    }
}
