import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A scriptable HTTP/1.1 partner on loopback (plain or TLS), built directly on SwiftNIO, for testing the
/// real transport against real sockets: each path answers as scripted, including the ways a partner can
/// misbehave (stalls, resets, huge bodies), and every request is recorded.
///
/// Call ``shutdown()`` when done; it closes the listener and every open connection.
public final class PartnerServer: Sendable {
    /// The bound port (the server asks the kernel for a free one).
    public let port: Int
    /// The host literal the server listens on, e.g. `127.0.0.1` or `::1`.
    public let host: String
    /// `http://HOST:PORT` or `https://HOST:PORT` (IPv6 in brackets), without a trailing slash.
    public let baseURL: String
    /// Whether the server speaks TLS.
    public let isTLS: Bool

    /// The `SO_SNDBUF` of accepted connections.
    static let socketSendBufferSize = 128 * 1024

    private let shared: PartnerServerShared
    private let listener: any Channel

    private init(port: Int, host: String, isTLS: Bool, shared: PartnerServerShared, listener: any Channel) {
        self.port = port
        self.host = host
        self.isTLS = isTLS
        self.shared = shared
        self.listener = listener
        self.baseURL = Self.url(scheme: isTLS ? "https" : "http", host: host, port: port, path: "")
    }

    /// Starts a server on `host` (a loopback literal) and `port` (default: a free one). With `tls`, it presents
    /// that chain and offers only `http/1.1` over ALPN, so clients stay on HTTP/1.1. A given port lets a test
    /// bring a partner back where it was (the address is reusable at once).
    public static func start(
        tls: IssuedCertificate? = nil,
        host: String = "127.0.0.1",
        port requestedPort: Int = 0
    ) async throws -> PartnerServer {
        let sslContext = try tls.map { try NIOSSLContext(configuration: $0.makeServerConfiguration()) }
        let shared = PartnerServerShared()
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            // A fixed send buffer (Linux doubles it to 256 KiB) instead of autotuning up to tcp_wmem's 4 MiB, so
            // `bytesWritten` tracks what the client consumed rather than what the kernel was willing to queue.
            .childChannelOption(.socketOption(.so_sndbuf), value: PartnerServer.socketSendBufferSize)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let number = shared.register(channel) else {
                        // Accepted while shutting down.
                        channel.close(promise: nil)
                        return
                    }
                    channel.closeFuture.whenComplete { _ in shared.unregister(number) }
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(PartnerSocketEdgeHandler())
                    if let sslContext {
                        try pipeline.addHandler(NIOSSLServerHandler(context: sslContext))
                    }
                    // No pipelining assistance: it stops reading while a response is in progress, and then a
                    // client's FIN or close_notify mid-stall would go unseen. The handler queues pipelined requests.
                    try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    try pipeline.addHandler(PartnerConnectionHandler(shared: shared, connectionNumber: number))
                }
            }
        let listener = try await bootstrap.bind(host: host, port: requestedPort).get()
        guard let port = listener.localAddress?.port else {
            try? await listener.close()
            throw ChannelError.unknownLocalAddress
        }
        return PartnerServer(port: port, host: host, isTLS: tls != nil, shared: shared, listener: listener)
    }

    /// `baseURL` + `path`, optionally with another host name (e.g. `localhost`, to match a certificate's DNS
    /// name) at the same port.
    public func url(_ path: String, host: String? = nil) -> String {
        Self.url(scheme: isTLS ? "https" : "http", host: host ?? self.host, port: port, path: path)
    }

    /// Closes the listener and every open connection (stalled ones included) and waits until they are
    /// closed. Safe to call more than once.
    public func shutdown() async throws {
        let connections = shared.beginShutdown()
        do {
            try await listener.close()
        } catch ChannelError.alreadyClosed {
            // An earlier shutdown closed it.
        }
        for connection in connections {
            connection.eventLoop.execute {
                // Close below TLS: a stalled peer need not answer `close_notify` for the socket to go.
                if let edge = try? connection.pipeline.syncOperations.context(
                    handlerType: PartnerSocketEdgeHandler.self
                ) {
                    edge.close(promise: nil)
                } else {
                    connection.close(promise: nil)
                }
            }
        }
        for connection in connections {
            try? await connection.closeFuture.get()
        }
    }

    // MARK: Scripting

    /// Answers requests whose path is exactly `path` (query ignored) with `behavior`, replacing any earlier
    /// script for it.
    public func script(path: String, _ behavior: Behavior) {
        shared.state.withLock { $0.scripts[path] = behavior }
    }

    /// Answers requests to unscripted paths with `behavior` (initially `404` with an empty body).
    public func scriptDefault(_ behavior: Behavior) {
        shared.state.withLock { $0.fallback = behavior }
    }

    // MARK: Observations

    /// Every complete request received so far, in arrival order of their ends.
    public var requests: [RecordedRequest] {
        shared.state.withLock { $0.requests }
    }

    /// How many complete requests reached `path`.
    public func requestCount(path: String) -> Int {
        shared.state.withLock { state in state.requests.count { $0.path == path } }
    }

    /// The most requests ever in progress at once: from a request's head arriving until its response is
    /// finished or its connection closed.
    public var peakConcurrentRequests: Int {
        shared.state.withLock { $0.peakInProgress }
    }

    /// The most requests (to `path`, or to any path) whose heads arrived within one `window`,
    /// over every window that starts at an arrival: what "never more than N calls in any second"
    /// is checked against.
    public func peakArrivals(path: String? = nil, within window: Duration = .seconds(1)) -> Int {
        let arrivals = requests.filter { path == nil || $0.path == path }.map(\.arrivedAt).sorted()
        var peak = 0
        var first = 0
        for (last, arrival) in arrivals.enumerated() {
            while arrival - arrivals[first] >= window { first += 1 }
            peak = max(peak, last - first + 1)
        }
        return peak
    }

    /// Requests in progress now (see ``peakConcurrentRequests``).
    public var requestsInProgress: Int {
        shared.state.withLock { $0.inProgress }
    }

    /// Connections open now.
    public var openConnections: Int {
        shared.state.withLock { $0.connections.count }
    }

    /// How many connections were ever accepted.
    public var acceptedConnections: Int {
        shared.state.withLock { $0.nextConnectionNumber }
    }

    /// Response body bytes to `path` that the socket accepted (summed over requests): lets a test prove a
    /// client abandoned a large body early. Counts the HTTP body only (chunk framing and TLS excluded).
    public func bytesWritten(path: String) -> Int {
        shared.state.withLock { $0.bytesWritten[path, default: 0] }
    }

    private static func url(scheme: String, host: String, port: Int, path: String) -> String {
        let authorityHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(scheme)://\(authorityHost):\(port)\(path)"
    }
}

/// State shared by the server object and its connection handlers.
final class PartnerServerShared: Sendable {
    struct State {
        var scripts: [String: PartnerServer.Behavior] = [:]
        var fallback: PartnerServer.Behavior = .status(404)
        var requests: [PartnerServer.RecordedRequest] = []
        var inProgress = 0
        var peakInProgress = 0
        var bytesWritten: [String: Int] = [:]
        var connections: [Int: any Channel] = [:]
        var nextConnectionNumber = 0
        var isShutDown = false
    }

    let state = Mutex(State())

    /// A number for a new connection, or `nil` once shutdown began.
    func register(_ channel: any Channel) -> Int? {
        state.withLock { state in
            guard !state.isShutDown else { return nil }
            let number = state.nextConnectionNumber
            state.nextConnectionNumber += 1
            state.connections[number] = channel
            return number
        }
    }

    func unregister(_ number: Int) {
        _ = state.withLock { $0.connections.removeValue(forKey: number) }
    }

    /// Marks the server shut down; returns the connections open now.
    func beginShutdown() -> [any Channel] {
        state.withLock { state in
            state.isShutDown = true
            return Array(state.connections.values)
        }
    }

    func behavior(for path: String) -> PartnerServer.Behavior {
        state.withLock { $0.scripts[path] ?? $0.fallback }
    }

    func requestStarted() {
        state.withLock { state in
            state.inProgress += 1
            state.peakInProgress = max(state.peakInProgress, state.inProgress)
        }
    }

    func requestEnded() {
        state.withLock { $0.inProgress -= 1 }
    }

    func record(_ request: PartnerServer.RecordedRequest) {
        state.withLock { $0.requests.append(request) }
    }

    func addBytesWritten(_ count: Int, path: String) {
        state.withLock { $0.bytesWritten[path, default: 0] += count }
    }
}
