import Hummingbird
@testable import MirrorGateHTTP
import RegistryModel
import Testing

@Suite("RegistryResponder")
struct RegistryResponderTests {
    typealias Responder = RegistryResponder<BasicRequestContext>

    @Test func selectWithoutRange() throws {
        var headers = HTTPFields()
        let (status, selected) = try Responder.select(range: nil, size: 2048, headers: &headers)
        #expect(status == .ok)
        #expect(selected == 0...2047)
        #expect(headers[.contentRange] == nil)

        let (emptyStatus, emptySelected) = try Responder.select(range: nil, size: 0, headers: &headers)
        #expect(emptyStatus == .ok)
        #expect(emptySelected == nil)
    }

    @Test(arguments: [
        ("bytes=500-1499", "bytes 500-1499/2048", 1000),
        ("bytes=500-", "bytes 500-2047/2048", 1548),
        ("bytes=-500", "bytes 1548-2047/2048", 500),
        ("bytes=2000-5000", "bytes 2000-2047/2048", 48),
    ])
    func selectPartial(_ header: String, _ contentRange: String, _ count: Int) throws {
        var headers = HTTPFields()
        let range = try ByteRange.parse(header)
        let (status, selected) = try Responder.select(range: range, size: 2048, headers: &headers)
        #expect(status == .partialContent)
        #expect(selected?.count == count)
        #expect(headers[.contentRange] == contentRange)
    }

    @Test(arguments: [("bytes=5000-10000", UInt64(2048)), ("bytes=0-", 0), ("bytes=-0", 10)])
    func selectUnsatisfiableIs416WithContentRange(_ header: String, _ size: UInt64) throws {
        var headers = HTTPFields()
        let range = try ByteRange.parse(header)
        let error = #expect(throws: RegistryError.self) { try Responder.select(range: range, size: size, headers: &headers) }
        #expect(error?.code == .sizeInvalid)
        #expect(error?.status == 416)
        #expect(error?.headers.contains { $0.0 == "Content-Range" && $0.1 == "bytes */\(size)" } == true)
    }

    @Test func errorResponse() {
        let error = RegistryError(.sizeInvalid, "nope", headers: [("Content-Range", "bytes */10")])
        let response = Responder.errorResponse(error, method: .get)
        #expect(response.status.code == 416)
        #expect(response.headers[.contentType] == "application/json; charset=utf-8")
        #expect(response.headers[.contentRange] == "bytes */10")
        #expect(response.headers[.contentLength] == String(error.envelope.utf8.count))
        #expect(response.headers[.dockerDistributionAPIVersion] == "registry/2.0")

        let head = Responder.errorResponse(RegistryError(.manifestUnknown, "x"), method: .head)
        #expect(head.status.code == 404)
        #expect(head.headers[.contentLength] == String(RegistryError(.manifestUnknown, "x").envelope.utf8.count))
    }

    @Test func readOnly() {
        let error = Responder.readOnly(.put)
        #expect(error.code == .unsupported)
        #expect(error.status == 405)
        #expect(error.message.contains("PUT"))
    }
}

@Suite("RegistryResponder ns")
struct NamespaceParameterTests {
    @Test(arguments: ["docker.io", "Docker.IO", "registry.local:5000", "localhost", "10.0.0.1:443"])
    func registryHostsAreKeptLowercased(_ ns: String) throws {
        #expect(try RegistryResponder<BasicRequestContext>.namespaceParameter(Substring(ns)) == ns.lowercased())
    }

    @Test(arguments: ["x\n2026 error FORGED", "evil.test\u{0}", "evil.test.", "127.0.0.1:19011/x", "a b.c", "nodots", "-x.io", "ünï.code", "x.io:0", "x.io:+1"])
    func anythingElseIsNameInvalidAndNotEchoed(_ ns: String) {
        do {
            _ = try RegistryResponder<BasicRequestContext>.namespaceParameter(Substring(ns))
            Issue.record("\(ns.debugDescription) was accepted")
        } catch {
            #expect(error.code == .nameInvalid)
            #expect(error.status == 400)
            #expect(!error.message.contains(ns))
        }
    }

    @Test func absentOrEmptyIsNone() throws {
        #expect(try RegistryResponder<BasicRequestContext>.namespaceParameter(nil) == nil)
        #expect(try RegistryResponder<BasicRequestContext>.namespaceParameter("") == nil)
    }
}
