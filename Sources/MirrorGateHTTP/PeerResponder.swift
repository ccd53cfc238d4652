import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MirrorGateCore
import NIOCore
import RegistryModel

/// The responder of `cluster.peer_listen`: other replicas stream the blobs this one is fetching
/// (``PeerProtocol`` has the request). Only holders of the shared peer token are answered;
/// anyone else gets 401 in the OCI envelope, whatever the path.
///
/// An in-flight blob is read as it arrives and with the client's back-pressure (the response
/// body awaits each write), and its newest chunk is sent only after the digest verified, as to
/// a client of this replica: a peer never receives a whole blob that fails verification. When
/// the fetch fails underneath, the response is cut off, and the peer looks at the lease again.
public struct PeerResponder<Context: RequestContext>: HTTPResponder {
    let blobs: PeerBlobs
    let token: String
    let logger: Logger

    public init(blobs: PeerBlobs, token: String, logger: Logger) {
        self.blobs = blobs
        self.token = token
        self.logger = logger
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        guard PeerProtocol.authorizes(request.headers[.authorization], token: token) else {
            var response = RegistryResponder<Context>.errorResponse(
                RegistryError(.unauthorized, "peer requests need the cluster's peer token (cluster.peer_token_file)"), method: request.method)
            response.headers[.wwwAuthenticate] = "Bearer realm=\"mirrorgate-peer\""
            return response
        }
        do {
            return try await blob(request)
        } catch let error as RegistryError {
            return RegistryResponder<Context>.errorResponse(error, method: request.method)
        }
    }

    private func blob(_ request: Request) async throws -> Response {
        let path = request.uri.path
        guard request.method == .get, path.hasPrefix(PeerProtocol.pathPrefix) else {
            throw RegistryError(.unsupported, status: 404, "the peer listener serves GET \(PeerProtocol.pathPrefix)<digest>?registry=<key> only")
        }
        let digest = try Digest(parsing: path.dropFirst(PeerProtocol.pathPrefix.count))
        guard let registry = request.uri.queryParameters.get("registry"), !registry.isEmpty else {
            throw RegistryError(.nameInvalid, "the registry query parameter is required")
        }
        let start: UInt64
        if let header = request.headers[.range] {
            guard case .from(let first, nil) = try ByteRange.parse(header) else {
                throw RegistryError(.sizeInvalid, "peer requests ask for bytes=<n>- only")
            }
            start = first
        } else {
            start = 0
        }
        guard let source = await blobs.source(registry: registry, digest: digest) else {
            throw RegistryError(.blobUnknown, "blob \(digest) is neither in flight nor stored on this replica")
        }
        var headers: HTTPFields = [.contentType: MediaType.octetStream]
        let sizeField = HTTPField.Name(PeerProtocol.sizeHeader)!
        switch source {
        case .stored(let cached):
            headers[sizeField] = String(cached.size)
            guard start < cached.size else {
                headers[.contentLength] = "0"
                return Response(status: .ok, headers: headers, body: .init())
            }
            let reader = try await cached.reader(range: start...(cached.size - 1))
            return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: Int(reader.length)) { writer in
                defer { withExtendedLifetime(cached) {} }
                try await reader.stream { try await writer.write($0) }
                try await writer.finish(nil)
            })
        case .inFlight(let blob):
            // Waits for the holder's upstream to answer; its failure is this answer's.
            let size = try await blob.size()
            guard let size else {
                return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                    try await blob.read(from: start, through: nil) { try await writer.write($0) }
                    try await writer.finish(nil)
                })
            }
            headers[sizeField] = String(size)
            guard start < size else {
                headers[.contentLength] = "0"
                return Response(status: .ok, headers: headers, body: .init())
            }
            return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: Int(size - start)) { writer in
                try await blob.read(from: start, through: size - 1) { try await writer.write($0) }
                try await writer.finish(nil)
            })
        }
    }
}
