#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A TCP port on 127.0.0.1 that is bound by this object but never listened on: every
/// connection to it is refused at once, and no other process can take the port while the
/// object lives (no `SO_REUSEADDR`).
///
/// Used wherever a client must have somewhere to go that goes nowhere: containerd's
/// fallback `server`, and the `HTTP_PROXY`/`HTTPS_PROXY` of dockerd and podman, so that
/// their fallback to the real registry fails on loopback instead of reaching the internet.
public final class ClosedPort: Sendable {
    /// A failure of the socket calls, with the C `errno` text.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong.
        public let description: String
    }

    /// The reserved port.
    public let port: Int
    /// The bound socket (-1 once released).
    private let socketFD: Mutex<Int32>

    /// `http://127.0.0.1:<port>`.
    public var url: String { "http://127.0.0.1:\(port)" }
    /// `127.0.0.1:<port>`.
    public var hostPort: String { "127.0.0.1:\(port)" }

    /// Binds a socket to 127.0.0.1:0 without listening and records the port.
    public init() throws {
        #if canImport(Glibc) || canImport(Musl)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw Failure(description: "closed port: socket failed: \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw Failure(description: "closed port: bind failed: \(String(cString: strerror(code)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getsockname(fd, $0, &length)
            }
        }
        guard named == 0 else {
            let code = errno
            close(fd)
            throw Failure(description: "closed port: getsockname failed: \(String(cString: strerror(code)))")
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        socketFD = Mutex(fd)
    }

    /// Closes the socket; the port may then be taken by anyone. Idempotent.
    public func release() {
        let fd = socketFD.withLock { fd in
            defer { fd = -1 }
            return fd
        }
        if fd >= 0 { close(fd) }
    }

    deinit { release() }
}
