#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Finds free TCP ports on 127.0.0.1 for test servers.
///
/// The port is found by binding a socket to port 0 (the kernel picks an unused
/// ephemeral port), reading the chosen port back with `getsockname`, and closing the
/// socket. Nothing ever connected to it, so the port is immediately reusable. There is
/// an unavoidable window between closing and the real server binding; the ephemeral
/// range is large enough that collisions are negligible in practice.
public struct FreePort: Sendable {
    /// An error from the socket calls, with the C `errno` text.
    public struct SocketError: Error, CustomStringConvertible {
        /// Which call failed (`socket`, `bind`, `getsockname`).
        public let call: String
        /// The value of `errno` after the failed call.
        public let code: Int32
        public var description: String { "FreePort: \(call) failed: \(String(cString: strerror(code)))" }
    }

    /// Returns a TCP port on 127.0.0.1 that was free at the time of the call.
    public static func allocate() throws -> Int {
        #if canImport(Glibc) || canImport(Musl)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw SocketError(call: "socket", code: errno) }
        defer { close(fd) }

        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw SocketError(call: "bind", code: errno) }

        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getsockname(fd, $0, &length)
            }
        }
        guard named == 0 else { throw SocketError(call: "getsockname", code: errno) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Returns `count` distinct ports that were free at the time of the call (asks again
    /// whenever the kernel repeats a port it already returned).
    public static func allocate(count: Int) throws -> [Int] {
        var ports: [Int] = []
        var attempts = 0
        while ports.count < count {
            attempts += 1
            let port = try allocate()
            if !ports.contains(port) { ports.append(port) }
            if attempts > count * 20 { break }
        }
        return ports
    }
}
