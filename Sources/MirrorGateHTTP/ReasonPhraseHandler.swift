import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Puts a denial's message in the status line: `HTTP/1.1 403 Forbidden: repository … is not
/// allowed …`.
///
/// containerd resolves tags with HEAD, which has no body, and reports a failed HEAD by its
/// status line alone (`pulling from host … failed with status code [manifests v1]: 403
/// Forbidden`); that line is what `ctr` and kubelet events show. NIO writes its own phrase
/// for every standard code, and Hummingbird's HTTP-types codec drops any other, so this
/// handler sits at the HTTP/1 level (just after the response encoder) and turns the
/// ``header`` a response carries into a custom phrase. The header itself is never sent.
final class ReasonPhraseHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Set by ``RegistryResponder/errorResponse(_:method:)`` on a denial.
    static let header = "X-MirrorGate-Reason"

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .head(var head) = unwrapOutboundIn(data), head.status == .forbidden, let reason = head.headers.first(name: Self.header) else {
            context.write(data, promise: promise)
            return
        }
        head.headers.remove(name: Self.header)
        head.status = .custom(code: head.status.code, reasonPhrase: Self.phrase(reason))
        context.write(wrapOutboundOut(.head(head)), promise: promise)
    }

    /// A reason phrase is spaces, tabs and visible ASCII (RFC 9112); anything else becomes `?`.
    static func phrase(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.prefix(400).map { (0x20...0x7E).contains($0.value) ? $0 : "?" }))
    }
}

/// Installs ``ReasonPhraseHandler`` at the HTTP/1 level of each connection (Hummingbird's
/// extra handlers all come after its HTTP-types codec), then does nothing but pass requests on.
final class ReasonPhraseInstaller: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart

    func handlerAdded(context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        do {
            let encoder = try pipeline.handler(type: HTTPResponseEncoder.self)
            try pipeline.addHandler(ReasonPhraseHandler(), position: .after(encoder))
        } catch {
            // No HTTP/1 encoder in this pipeline: denials keep the standard phrase.
        }
    }
}
