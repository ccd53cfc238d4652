import Hummingbird
import NIOCore

/// The request context of both listeners: Hummingbird's basics plus the client's address,
/// which authentication failures are limited by, and its connection, which a cached blob is
/// sent on with `sendfile`.
public struct GatewayRequestContext: RequestContext, RemoteAddressRequestContext, FileSendingRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    public let fileSender: FileRegionSender

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
        self.fileSender = FileRegionSender(channel: source.channel)
    }
}
