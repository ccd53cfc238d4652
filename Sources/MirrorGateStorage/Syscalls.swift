#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The system calls the storage module makes, in one place. Byte I/O on files happens only
/// here, in the storage module: the rest of the gateway asks stores for readers and spools.
/// Linux (Glibc) is what CI builds and tests; the other branches keep the calls portable.
enum Syscalls {
    static func write(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.write(fd, pointer, count)
        #elseif canImport(Musl)
        Musl.write(fd, pointer, count)
        #else
        Darwin.write(fd, pointer, count)
        #endif
    }

    static func read(_ fd: Int32, _ pointer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
        #if canImport(Glibc)
        Glibc.read(fd, pointer, count)
        #elseif canImport(Musl)
        Musl.read(fd, pointer, count)
        #else
        Darwin.read(fd, pointer, count)
        #endif
    }

    static func pread(_ fd: Int32, _ pointer: UnsafeMutableRawPointer?, _ count: Int, _ offset: UInt64) -> Int {
        #if canImport(Glibc)
        Glibc.pread(fd, pointer, count, off_t(offset))
        #elseif canImport(Musl)
        Musl.pread(fd, pointer, count, off_t(offset))
        #else
        Darwin.pread(fd, pointer, count, off_t(offset))
        #endif
    }

    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 {
        #if canImport(Glibc)
        Glibc.open(path, flags, mode)
        #elseif canImport(Musl)
        Musl.open(path, flags, mode)
        #else
        Darwin.open(path, flags, mode)
        #endif
    }

    /// Tells the kernel a file will be read front to back (Linux only; elsewhere a no-op).
    static func adviseSequential(_ fd: Int32) {
        #if os(Linux)
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)
        #endif
    }
}
