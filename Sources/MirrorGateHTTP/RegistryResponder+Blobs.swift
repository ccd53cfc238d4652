import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MirrorGateConfig
import MirrorGateCore
import MirrorGateStorage
import NIOCore
import RegistryModel

/// Blobs: from the cache (with the eviction lease held until the last byte), following a
/// fetch in flight, passed through when the cache cannot take them, or answered by an
/// upstream's HEAD; ranges selected here.
extension RegistryResponder {
    // MARK: Blobs

    func blob(_ request: Request, context: Context, registry: String, name: RepositoryName, digest: Digest, headers: HTTPFields, log: inout RequestLog) async throws -> Response {
        var headers = headers
        headers[.dockerContentDigest] = digest.description
        headers[.contentType] = MediaType.octetStream
        headers[.acceptRanges] = "bytes"
        headers[.eTag] = "\"\(digest)\""
        let range = try request.headers[.range].flatMap { header throws(RegistryError) in try ByteRange.parse(header) }

        switch try await service.blob(registry: registry, name: name, digest: digest, head: request.method == .head) {
        case .cached(let cached):
            log.upstream = "cache"
            log.cache = .hit
            // Only a GET of the whole blob goes to the store (`storage.s3.redirect`): a HEAD
            // needs no bytes, and a Range request is mostly a client resuming a download that
            // broke, perhaps on its way to the store, so the gateway serves it itself.
            //
            // The read lease ends with this answer, so it cannot cover the client's download.
            // The URL works for 10 minutes (S3BlobStore.defaultRedirectExpiry; S3 checks it when
            // a download starts, not while it streams). If the janitor evicts the blob before the
            // client's GET reaches the store, that GET gets a 404 and the client's retry comes
            // back here, where the blob is fetched again. A blob just redirected was just read,
            // so it is the last the LRU order evicts: only a cache that turns over within those
            // minutes loses it.
            if request.method == .get, range == nil, cached.size > 0, let location = await cached.redirectURL() {
                log.upstream = "redirect"
                headers[.contentType] = nil
                headers[.acceptRanges] = nil
                headers[.eTag] = nil
                headers[.location] = location
                headers[.contentLength] = "0"
                return Response(status: .temporaryRedirect, headers: headers, body: .init())
            }
            let (status, selected) = try Self.select(range: range, size: cached.size, headers: &headers)
            if request.method == .head || cached.size == 0 {
                headers[.contentLength] = String(selected.map { $0.count } ?? 0)
                return Response(status: status, headers: headers, body: .init())
            }
            let reader = try await cached.reader(range: selected!)
            let sender = (context as? any FileSendingRequestContext)?.fileSender
            // The body holds the cached blob (and its lease), so it is not evicted until sent.
            let body = ResponseBody(contentLength: Int(reader.length)) { writer in
                defer { withExtendedLifetime(cached) {} }
                // A local file goes out with sendfile (returning once its last byte is on the
                // socket), else (TLS, an object store) in buffers.
                if let region = reader.fileRegion, let sender {
                    let counter = (writer as? any ByteCountingWriter)?.counter
                    if try await sender.send(region, sent: { counter?.addSentFile($0) }) {
                        return try await writer.finish(nil)
                    }
                }
                try await reader.stream { try await writer.write($0) }
                try await writer.finish(nil)
            }
            return Response(status: status, headers: headers, body: body)

        case .passThrough(let blob):
            return try await passThrough(blob, request: request, headers: headers, log: &log)

        case .remote(let size, let source, let skipped):
            // A HEAD of a blob not cached: an upstream's HEAD answered it, nothing was fetched.
            log.upstream = source
            log.skipped = skipped
            log.cache = .miss
            if let size {
                let (status, selected) = try Self.select(range: range, size: size, headers: &headers)
                headers[.contentLength] = String(selected.map { $0.count } ?? 0)
                return Response(status: status, headers: headers, body: .init())
            }
            return Response(status: .ok, headers: headers, body: .init())

        case .inFlight(let blob):
            log.upstream = "fetch"
            log.upstreamAtEnd = { (blob.source, blob.skipped) }
            log.cache = .miss
            let head = await Self.result { () throws(RegistryError) in try await blob.size() }
            if case .failure = head, service.janitor?.isWritable == false || blob.didNotFit {
                // The fetch could not be cached (disk full, or this blob does not fit) before
                // sending anything: pass it through, verified, uncached.
                let passing = try await service.passThroughBlob(registry: registry, name: name, digest: digest)
                return try await passThrough(passing, request: request, headers: headers, log: &log)
            }
            let size = try head.get()
            guard let size else {
                // No length announced: stream everything, chunked.
                if request.method == .head { return Response(status: .ok, headers: headers, body: .init()) }
                return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                    try await blob.read(from: 0, through: nil) { try await writer.write($0) }
                    try await writer.finish(nil)
                })
            }
            let (status, selected) = try Self.select(range: range, size: size, headers: &headers)
            if request.method == .head || size == 0 {
                headers[.contentLength] = String(selected.map { $0.count } ?? 0)
                return Response(status: status, headers: headers, body: .init())
            }
            let bytes = selected!
            return Response(status: status, headers: headers, body: ResponseBody(contentLength: Int(bytes.count)) { writer in
                try await blob.read(from: bytes.lowerBound, through: bytes.upperBound) { try await writer.write($0) }
                try await writer.finish(nil)
            })
        }
    }

    static func result<T>(_ body: () async throws(RegistryError) -> T) async -> Result<T, RegistryError> {
        do throws(RegistryError) {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }

    /// Disk full: no single-flight file to follow and no ranges; the whole blob, verified.
    private func passThrough(_ blob: PassThroughBlob, request: Request, headers: HTTPFields, log: inout RequestLog) async throws -> Response {
        log.upstream = "pass-through"
        log.cache = .passThrough
        var headers = headers
        headers[.contentRange] = nil
        if let size = blob.size { headers[.contentLength] = String(size) }
        if request.method == .head {
            return Response(status: .ok, headers: headers, body: .init())
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: blob.size.map(Int.init)) { writer in
            try await blob.stream { try await writer.write($0) }
            try await writer.finish(nil)
        })
    }

    /// Picks 200 or 206 for `range`, sets `Content-Range`, or throws 416.
    static func select(range: ByteRange?, size: UInt64, headers: inout HTTPFields) throws(RegistryError) -> (HTTPResponse.Status, ClosedRange<UInt64>?) {
        guard let range else { return (.ok, size > 0 ? 0...(size - 1) : nil) }
        guard let selected = range.resolve(length: size) else {
            throw RegistryError(.sizeInvalid, "range not satisfiable for a blob of \(size) bytes", headers: [("Content-Range", "bytes */\(size)")])
        }
        headers[.contentRange] = "bytes \(selected.lowerBound)-\(selected.upperBound)/\(size)"
        return (.partialContent, selected)
    }
}
