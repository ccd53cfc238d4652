import HTTPTypes
import Logging
@testable import MirrorGateHTTP
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import NIOPosix
import Testing

/// The channel handlers that keep slow and numerous clients from exhausting descriptors.
@Suite("Connection handlers")
struct ConnectionHandlerTests {
    static let head = HTTPRequestPart.head(HTTPRequest(method: .get, scheme: nil, authority: nil, path: "/healthz"))

    /// A body trickled part by part used to restart Hummingbird's idle timer forever; the
    /// deadline counts from the head.
    @Test func aTrickledBodyIsCutOffAtTheDeadline() throws {
        let channel = EmbeddedChannel(handler: RequestBodyDeadlineHandler(timeout: .seconds(3)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(Self.head)
        for _ in 0..<5 {
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(500))
            try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "a")))
        }
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(499))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        #expect(!channel.isActive, "a body trickled for longer than the deadline kept its connection")
    }

    @Test func completeRequestsAreNotCutOff() throws {
        let channel = EmbeddedChannel(handler: RequestBodyDeadlineHandler(timeout: .seconds(3)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        for _ in 0..<3 {
            try channel.writeInbound(Self.head)
            try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "abc")))
            try channel.writeInbound(HTTPRequestPart.end(nil))
            channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        }
        try channel.writeInbound(Self.head)
        try channel.writeInbound(HTTPRequestPart.end(nil))
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(channel.isActive)
        _ = try channel.finish()
    }

    @Test func connectionsBeyondTheCapAreClosedAtOnce() throws {
        let gauge = ConnectionGauge(limit: 2, listener: "test", logger: Logger(label: "test"))
        func connect() throws -> EmbeddedChannel {
            let channel = EmbeddedChannel(handler: ConnectionLimitHandler(gauge: gauge))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            return channel
        }
        let first = try connect(), second = try connect()
        let third = try connect()
        #expect(first.isActive && second.isActive)
        #expect(!third.isActive, "a connection over the cap was kept")
        #expect(gauge.open == 2)
        _ = try first.finish()
        #expect(gauge.open == 1)
        let fourth = try connect()
        #expect(fourth.isActive)
        #expect(gauge.open == 2)
        _ = try second.finish()
        _ = try fourth.finish()
        #expect(gauge.open == 0)
    }

    /// Counts the reads that reach the socket end of the pipeline.
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = NIOAny
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    /// Records errors that get past the back-off.
    final class ErrorRecorder: ChannelInboundHandler {
        typealias InboundIn = NIOAny
        var errors: [any Error] = []
        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            errors.append(error)
        }
    }

    /// EMFILE from accept(2) made NIO retry at once, spinning the event loop; the back-off
    /// withholds reads for a while, doubling, and passes other errors on.
    @Test func acceptFailuresForLackOfDescriptorsPauseAccepting() throws {
        let counter = ReadCounter(), recorder = ErrorRecorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([counter, AcceptBackoffHandler(logger: Logger(label: "test")), recorder])
        channel.pipeline.read()
        #expect(counter.reads == 1)

        channel.pipeline.fireErrorCaught(IOError(errnoCode: EMFILE, reason: "accept"))
        channel.pipeline.read()
        #expect(counter.reads == 1, "a read went through while accept was failing")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(10))
        #expect(counter.reads == 2)

        // Failing again: twice as long.
        channel.pipeline.fireErrorCaught(IOError(errnoCode: ENFILE, reason: "accept"))
        channel.pipeline.read()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(10))
        #expect(counter.reads == 2)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(10))
        #expect(counter.reads == 3)
        #expect(recorder.errors.isEmpty)

        channel.pipeline.fireErrorCaught(IOError(errnoCode: ECONNRESET, reason: "read"))
        #expect(recorder.errors.count == 1)
        channel.pipeline.read()
        #expect(counter.reads == 4)
    }

    @Test func theOpenFileLimitBoundsTheConnectionCap() {
        #expect(OpenFileLimit.affordableConnections(configured: 4096, openFiles: 1 << 20, maxConcurrentFetches: 32) == 4096)
        // 1024 descriptors: 64 for the process, 64 for the admin listener, 96 for 32 fetches, 2 a connection.
        #expect(OpenFileLimit.affordableConnections(configured: 4096, openFiles: 1024, maxConcurrentFetches: 32) == 400)
        #expect(OpenFileLimit.affordableConnections(configured: 100, openFiles: 1024, maxConcurrentFetches: 32) == 100)
        #expect(OpenFileLimit.affordableConnections(configured: 4096, openFiles: 100, maxConcurrentFetches: 32) == 1)
        let limits = OpenFileLimit.current()
        #expect(limits != nil && limits!.soft <= limits!.hard)
    }
}
