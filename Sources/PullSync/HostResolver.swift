import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Resolves a partner's host name to addresses, so that the transport can check them
/// before connecting and pin the connection to the address it checked.
public protocol HostResolver: Sendable {
    /// Every address `host` resolves to, in preference order. Throws when it resolves to none.
    func resolve(host: String) async throws -> [IPAddress]
}

/// A name did not resolve.
public struct HostResolutionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The name that was looked up.
    public var host: String
    /// Why it failed: the resolver's error text, e.g. `no addresses`.
    public var reason: String
    /// Creates the error for `host`, with the resolver's `reason`.
    public init(host: String, reason: String) {
        self.host = host
        self.reason = reason
    }
    public var description: String { "cannot resolve '\(host)': \(reason)" }
}

/// The system resolver (`getaddrinfo`), run on threads of its own so it never blocks a Swift
/// concurrency thread. IP literals resolve to themselves without a lookup.
public struct SystemHostResolver: HostResolver {
    /// Where lookups run, for the life of the process (as NIO's own singletons do). Not NIO's
    /// shared pool: a lookup can block for seconds on a DNS server that doesn't answer, and there
    /// it would hold up the SQLite store's queries, which run on that pool; nor would a lookup
    /// wait behind them.
    private static let lookupThreads: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        return pool
    }()

    /// Creates the system resolver.
    public init() {}

    public func resolve(host: String) async throws -> [IPAddress] {
        if let literal = IPAddress(host) { return [literal] }
        // getaddrinfo can't be interrupted: the caller stops waiting when cancelled (its deadline
        // passed), and the lookup finishes on the pool thread with nobody listening.
        let future = Self.lookupThreads.runIfActive(eventLoop: MultiThreadedEventLoopGroup.singleton.any()) {
            try Self.lookUp(host)
        }
        let once = ResumeOnce<[IPAddress]>()
        let addresses: [IPAddress] = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                once.set(continuation)
                future.whenComplete { once.resume(with: $0) }
            }
        } onCancel: {
            once.resume(with: .failure(CancellationError()))
        }
        guard !addresses.isEmpty else { throw HostResolutionError(host: host, reason: "no addresses") }
        return addresses
    }

    private static func lookUp(_ host: String) throws -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Darwin)
        hints.ai_socktype = SOCK_STREAM
        #else
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &result)
        guard status == 0, let first = result else {
            throw HostResolutionError(host: host, reason: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(first) }
        var addresses: [IPAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let sockaddr = entry.pointee.ai_addr {
                switch Int32(sockaddr.pointee.sa_family) {
                case AF_INET:
                    let value = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        UInt32(bigEndian: $0.pointee.sin_addr.s_addr)
                    }
                    addresses.append(
                        .v4(
                            UInt8(value >> 24),
                            UInt8((value >> 16) & 0xFF),
                            UInt8((value >> 8) & 0xFF),
                            UInt8(value & 0xFF)
                        )
                    )
                case AF_INET6:
                    var v6 = sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    addresses.append(.v6(withUnsafeBytes(of: &v6) { Array($0) }))
                default:
                    break
                }
            }
            cursor = entry.pointee.ai_next
        }
        var seen = Set<IPAddress>()
        return addresses.filter { seen.insert($0).inserted }
    }
}

/// Fixed answers for some names (an `/etc/hosts` for the transport), falling back to another
/// resolver for the rest. Tests use it to point a partner's name at a loopback server, or at
/// a private address that must be refused without any connection being made.
public struct StaticHostResolver: HostResolver {
    private let table: [String: [IPAddress]]
    private let fallback: (any HostResolver)?

    /// `table` maps host names (normalized like partner hosts) to addresses.
    public init(_ table: [String: [IPAddress]], fallback: (any HostResolver)? = nil) {
        self.table = Dictionary(table.map { (Self.normalize($0.key), $0.value) }, uniquingKeysWith: { $1 })
        self.fallback = fallback
    }

    public func resolve(host: String) async throws -> [IPAddress] {
        if let addresses = table[Self.normalize(host)] { return addresses }
        if let fallback { return try await fallback.resolve(host: host) }
        if let literal = IPAddress(host) { return [literal] }
        throw HostResolutionError(host: host, reason: "not in the static table")
    }

    private static func normalize(_ host: String) -> String {
        var name = host.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        return name
    }
}

/// Resumes a continuation exactly once, with whichever result comes first (the lookup or a
/// cancellation), even when that result arrives before the continuation is set.
private final class ResumeOnce<Value: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Value, any Error>?
        var early: Result<Value, any Error>?
        var finished = false
    }

    private let state = Mutex(State())

    func set(_ continuation: CheckedContinuation<Value, any Error>) {
        let early = state.withLock { state -> Result<Value, any Error>? in
            if let early = state.early {
                state.finished = true
                state.early = nil
                return early
            }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func resume(with result: Result<Value, any Error>) {
        let continuation = state.withLock { state -> CheckedContinuation<Value, any Error>? in
            guard !state.finished else { return nil }
            guard let continuation = state.continuation else {
                if state.early == nil { state.early = result }
                return nil
            }
            state.finished = true
            state.continuation = nil
            return continuation
        }
        continuation?.resume(with: result)
    }
}
