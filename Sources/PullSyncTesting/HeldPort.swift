#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A loopback port bound but not listening: a connection to it is refused, and the system gives it
/// to no other socket until ``release()``.
///
/// For "nobody listens here" in a test. A port found free and let go again can be given to the next
/// server any test of the suite starts: CI once saw a partner server of another test answer an
/// opt-out meant for nobody.
public final class HeldPort {
    /// The port's number.
    public let port: Int
    private let descriptor: Int32
    private var isHeld = true

    /// Binds a socket to a port of the system's choosing on 127.0.0.1.
    public init() throws(HeldPortError) {
        #if canImport(Darwin)
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #else
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #endif
        guard fd >= 0 else { throw HeldPortError(call: "socket", errno: errno) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let failed: String? = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                if bind(fd, address, length) != 0 { return "bind" }
                if getsockname(fd, address, &length) != 0 { return "getsockname" }
                return nil
            }
        }
        if let failed {
            let code = errno
            close(fd)
            throw HeldPortError(call: failed, errno: code)
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Lets the port go, for a server to listen on it (once; later calls do nothing).
    public func release() {
        guard isHeld else { return }
        isHeld = false
        close(descriptor)
    }

    deinit { release() }
}

/// A system call that ``HeldPort`` needed failed.
public struct HeldPortError: Error, CustomStringConvertible {
    /// The call: `socket`, `bind` or `getsockname`.
    public let call: String
    /// Its `errno`.
    public let errno: Int32

    public var description: String { "\(call)() failed: errno \(errno)" }
}
