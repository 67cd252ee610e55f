import AsyncHTTPClient
public import Logging
public import NIOCore
import NIOHTTP1
public import NIOPosix
import NIOSSL
public import PullSyncKernel
public import ServiceLifecycle
import Synchronization

/// The real transport: HTTPS to partners over AsyncHTTPClient, hardened against partners
/// (and DNS answers) that misbehave.
///
/// - Redirects are never followed (a `3xx` comes back as a status); no retries.
/// - The whole call, name lookup to last byte, ends at `limits.timeout` (one deadline, on the
///   event loop's timer).
/// - A declared `Content-Length` over the body limit is refused before reading; a streamed
///   body is abandoned as soon as it passes the limit.
/// - TLS verification is always on, with optional extra trust roots.
/// - Targets are checked on the resolved address: loopback, private, link-local, unspecified
///   and other non-public addresses are refused (loopback is allowed only with
///   `allowLoopback`, the development switch). The connection is pinned to the address that
///   was checked (AsyncHTTPClient's `dnsOverride`, one client per partner host), and the
///   connected peer is checked again when the connection opens.
///
/// Run it in your `ServiceGroup` (it owns HTTP clients and shuts them down on shutdown), or
/// call ``shutdown()`` when done.
public final class HTTPPullTransport: PullTransport, Service {
    /// How the transport connects.
    public struct Configuration: Sendable {
        /// Development switch: allow loopback targets, over `https` or `http`. Default off.
        public var allowLoopback: Bool
        /// PEM files whose certificates are trusted in addition to the system's roots.
        public var additionalTrustRootFiles: [String]
        /// The longest a connection may take to open (the call's deadline still applies). Default 1 s.
        public var connectTimeout: Duration
        /// How long a checked address stays pinned before the name is resolved again. Default 60 s.
        public var addressTTL: Duration
        /// Resolves partner host names.
        public var resolver: any HostResolver
        /// Connections open at once to one partner host. ``PullSyncService`` sets it to the kernel's
        /// `maxInFlightCalls`, so that every call the kernel admits has a connection and its
        /// deadline isn't spent queueing for one; standalone, default that cap's default (128).
        public var connectionsPerHost: Int
        /// The monotonic time the address TTL is measured on (injected by tests). Default `ContinuousClock.now`.
        public var now: @Sendable () -> ContinuousClock.Instant

        /// Creates a configuration; every default is the one documented on its property.
        public init(
            allowLoopback: Bool = false,
            additionalTrustRootFiles: [String] = [],
            connectTimeout: Duration = .seconds(1),
            addressTTL: Duration = .seconds(60),
            resolver: any HostResolver = SystemHostResolver(),
            connectionsPerHost: Int = PullSyncConfiguration().maxInFlightCalls,
            now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
        ) {
            self.allowLoopback = allowLoopback
            self.additionalTrustRootFiles = additionalTrustRootFiles
            self.connectTimeout = connectTimeout
            self.addressTTL = addressTTL
            self.resolver = resolver
            self.connectionsPerHost = connectionsPerHost
            self.now = now
        }
    }

    private enum Pinning {
        case success(HTTPClient)
        case failure(TransportFailure)
    }

    private struct Pin {
        var address: IPAddress
        var client: HTTPClient
        var resolvedAt: ContinuousClock.Instant
    }

    private struct State {
        var pins: [String: Pin] = [:]
        /// Calls in progress on each client.
        var callsInProgress: [ObjectIdentifier: Int] = [:]
        /// Clients replaced after an address change that still carry calls: retired when the last one ends.
        var replaced: [ObjectIdentifier: HTTPClient] = [:]
        var shutDown = false
        /// `run()` is active (and so is the retired stream's reader).
        var running = false

        mutating func callStarted(on client: HTTPClient) {
            callsInProgress[ObjectIdentifier(client), default: 0] += 1
        }
    }

    private let configuration: Configuration
    /// The event loops the clients run on (tests read their threads' priority).
    package let eventLoopGroup: any EventLoopGroup
    /// A group this transport created and so must shut down.
    private let ownedGroup: MultiThreadedEventLoopGroup?
    private let logger: Logger
    private let tlsConfiguration: TLSConfiguration
    private let state = Mutex(State())
    private let retired: AsyncStream<HTTPClient>.Continuation
    private let retiredClients: AsyncStream<HTTPClient>

    /// - Parameters:
    ///   - configuration: partner TLS, address checks and connection limits.
    ///   - eventLoopGroup: the NIO event loops the clients run on; default the shared singleton.
    ///   - logger: where transport problems are logged.
    public convenience init(
        configuration: Configuration = Configuration(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "pullsync.transport", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.init(configuration: configuration, group: eventLoopGroup, owned: nil, logger: logger)
    }

    /// A transport on event loops of its own (`threads` of them), so that partner TLS and I/O
    /// never run on the loops that serve pages. They are shut down with the transport.
    ///
    /// - Parameters:
    ///   - configuration: partner TLS, address checks and connection limits.
    ///   - threads: how many event loops the transport starts (at least one).
    ///   - belowPages: run those loops' threads below the pages' priority (nice 10 on Linux, like
    ///     ``BackgroundExecutor``'s threads), so that a page's thread that wants a CPU gets it
    ///     first. ``PullSyncService`` sets it when it runs in the background.
    ///   - logger: where transport problems are logged.
    public convenience init(
        configuration: Configuration = Configuration(),
        dedicatedThreads threads: Int,
        belowPages: Bool = false,
        logger: Logger = Logger(label: "pullsync.transport", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        if belowPages {
            // The first job of each loop: nothing runs on it before it is lowered.
            for loop in group.makeIterator() {
                loop.execute { ThreadPriority.lowerCurrentThread() }
            }
        }
        self.init(configuration: configuration, group: group, owned: group, logger: logger)
    }

    private init(
        configuration: Configuration,
        group eventLoopGroup: any EventLoopGroup,
        owned: MultiThreadedEventLoopGroup?,
        logger: Logger = Logger(label: "pullsync.transport", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.ownedGroup = owned
        self.logger = logger
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .fullVerification
        tls.minimumTLSVersion = .tlsv12
        // Abandoning an oversized body sends close_notify; don't wait long for the partner's reply.
        tls.shutdownTimeout = .milliseconds(500)
        if !configuration.additionalTrustRootFiles.isEmpty {
            tls.additionalTrustRoots = configuration.additionalTrustRootFiles.map { .file($0) }
        }
        self.tlsConfiguration = tls
        (retiredClients, retired) = AsyncStream.makeStream(of: HTTPClient.self)
    }

    // MARK: Service

    /// Shuts down clients replaced after an address change once the calls they carry have
    /// ended; on graceful shutdown or cancellation, shuts down the rest.
    public func run() async throws {
        state.withLock { $0.running = true }
        await cancelWhenGracefulShutdown {
            for await client in self.retiredClients {
                try? await client.shutdown()
            }
        }
        _ = await closeClients()
        // This task is the stream's only reader: drain what is left, then release the loops.
        for await client in retiredClients { try? await client.shutdown() }
        try? await ownedGroup?.shutdownGracefully()
    }

    /// Shuts down every client. Sends after this fail as `transport_error`. When the transport
    /// runs as a service, `run()` finishes the job (it alone reads the retired-clients stream).
    public func shutdown() async {
        let running = await closeClients()
        guard !running else { return }
        for await client in retiredClients { try? await client.shutdown() }
        try? await ownedGroup?.shutdownGracefully()
    }

    /// Marks the transport shut down, closes its clients and ends the retired stream; returns
    /// whether `run()` is active.
    private func closeClients() async -> Bool {
        let (clients, running) = state.withLock { state -> ([HTTPClient], Bool) in
            state.shutDown = true
            defer {
                state.pins.removeAll()
                state.replaced.removeAll()
            }
            return (state.pins.values.map(\.client) + state.replaced.values, state.running)
        }
        retired.finish()
        for client in clients { try? await client.shutdown() }
        return running
    }

    // MARK: Sending

    public func send(_ request: PullRequest, limits: TransportLimits) async -> TransportResult {
        let url = request.url
        guard url.scheme == "https" || (url.scheme == "http" && configuration.allowLoopback) else {
            return .failure(.refusedTarget)
        }
        if HostName.isLoopback(url.host) && !configuration.allowLoopback { return .failure(.refusedTarget) }

        // One deadline covers the whole call: resolving the name, waiting for a connection,
        // connecting, the head and the body (a partner that sends headers and then stalls is
        // cut off). It is AsyncHTTPClient's own, on the event loop's timer, so a call costs no
        // extra task and no sleeping timer.
        let deadline = NIODeadline.now() + .nanoseconds(limits.timeout.nanoseconds)
        let client: HTTPClient
        switch await pinnedClient(for: url.host, scheme: url.scheme, timeout: limits.timeout) {
        case .success(let pinned): client = pinned
        case .failure(let failure): return .failure(failure)
        }
        defer { callEnded(on: client) }

        let outgoing: HTTPClient.Request
        do {
            var headers = HTTPHeaders([("User-Agent", "pullsync"), ("Accept", "application/json")])
            for header in request.headers { headers.replaceOrAdd(name: header.name, value: header.value) }
            outgoing = try HTTPClient.Request(
                url: request.renderedURL,
                method: HTTPMethod(rawValue: request.method),
                headers: headers,
                body: request.body.map { .bytes($0) }
            )
        } catch {
            return .failure(.transportError)
        }
        return await perform(outgoing, client: client, deadline: deadline, maxBody: limits.maxBodyBytes)
    }

    private func perform(
        _ request: HTTPClient.Request,
        client: HTTPClient,
        deadline: NIODeadline,
        maxBody: Int
    ) async -> TransportResult {
        // The accumulator refuses a declared length over the limit before reading, and a
        // streamed body as soon as it passes it. It traps outside 0...UInt32.max, so clamp.
        let bound = min(max(maxBody, 0), Int(UInt32.max))
        let task = client.execute(
            request: request,
            delegate: ResponseAccumulator(request: request, maxBodySize: bound),
            eventLoop: .indifferent,
            deadline: deadline,
            logger: logger
        )
        do {
            let response = try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
            let headers = response.headers.map { (name: $0.name, value: $0.value) }
            let body = response.body.map { Array($0.readableBytesView) } ?? []
            return .response(status: Int(response.status.code), headers: headers, body: body)
        } catch {
            // A deadline that fires while the call waits in the pool can surface as the pool's
            // last connect failure; past the deadline, the outcome is a timeout whatever the error.
            if Task.isCancelled || NIODeadline.now() >= deadline { return .failure(.timeout) }
            return .failure(Self.classify(error))
        }
    }

    /// Maps a client error to its outcome class.
    static func classify(_ error: any Error) -> TransportFailure {
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout, .readTimeout, .writeTimeout, .deadlineExceeded, .tlsHandshakeTimeout,
                .getConnectionFromPoolTimeout:
                return .timeout
            default:
                return .transportError
            }
        }
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            return .tlsError
        }
        if error is PinnedAddressMismatch { return .refusedTarget }
        if error is ResponseAccumulator.ResponseTooBigError { return .tooLarge }
        return .transportError
    }

    // MARK: Pinning

    private func pinnedClient(for host: String, scheme: String, timeout: Duration) async -> Pinning {
        let now = configuration.now()
        let cached = state.withLock { state -> Pinning? in
            guard let pin = state.pins[host], now - pin.resolvedAt < configuration.addressTTL else { return nil }
            guard allowedScheme(scheme, for: pin.address) else { return .failure(.refusedTarget) }
            state.callStarted(on: pin.client)
            return .success(pin.client)
        }
        if let cached { return cached }

        let addresses: [IPAddress]
        do {
            // A resolver is not bound by the client's deadline: this, the rare miss, has its own.
            let resolver = configuration.resolver
            addresses = try await withDeadline(timeout) { try await resolver.resolve(host: host) }
        } catch is DeadlineExceeded {
            return .failure(.timeout)
        } catch where Task.isCancelled {
            // The caller gave up (shutdown): the same outcome as a call cancelled later on.
            return .failure(.timeout)
        } catch {
            logger.debug("partner host did not resolve", metadata: ["host": "\(host)", "error": "\(error)"])
            return .failure(.transportError)
        }
        guard let address = addresses.first(where: isAllowed) else {
            logger.warning(
                "partner host resolves only to refused addresses",
                metadata: ["host": "\(host)", "addresses": "\(addresses.map(\.description))"]
            )
            return .failure(.refusedTarget)
        }
        guard allowedScheme(scheme, for: address) else { return .failure(.refusedTarget) }

        return state.withLock { state -> Pinning in
            guard !state.shutDown else { return .failure(.transportError) }
            if let pin = state.pins[host] {
                if pin.address == address {
                    state.pins[host]?.resolvedAt = now
                    state.callStarted(on: pin.client)
                    return .success(pin.client)
                }
                // Calls still in flight on the old client finish there; it retires after the last one.
                if state.callsInProgress[ObjectIdentifier(pin.client)] == nil {
                    retired.yield(pin.client)
                } else {
                    state.replaced[ObjectIdentifier(pin.client)] = pin.client
                }
            }
            let client = makeClient(host: host, address: address)
            state.pins[host] = Pin(address: address, client: client, resolvedAt: now)
            state.callStarted(on: client)
            return .success(client)
        }
    }

    /// Counts a call on `client` as ended, retiring the client if it was replaced and this was its last call.
    private func callEnded(on client: HTTPClient) {
        let id = ObjectIdentifier(client)
        state.withLock { state in
            let remaining = state.callsInProgress[id, default: 1] - 1
            guard remaining == 0 else {
                state.callsInProgress[id] = remaining
                return
            }
            state.callsInProgress[id] = nil
            if let replaced = state.replaced.removeValue(forKey: id) { retired.yield(replaced) }
        }
    }

    private func isAllowed(_ address: IPAddress) -> Bool {
        if address.isLoopback { return configuration.allowLoopback }
        return address.nonPublicRange == nil
    }

    // Plain http only ever goes to this machine.
    private func allowedScheme(_ scheme: String, for address: IPAddress) -> Bool {
        scheme == "https" || (scheme == "http" && address.isLoopback && configuration.allowLoopback)
    }

    private func makeClient(host: String, address: IPAddress) -> HTTPClient {
        var clientConfiguration = HTTPClient.Configuration(
            tlsConfiguration: tlsConfiguration,
            redirectConfiguration: .disallow,
            timeout: HTTPClient.Configuration.Timeout(connect: .nanoseconds(configuration.connectTimeout.nanoseconds)),
            connectionPool: HTTPClient.Configuration.ConnectionPool(
                idleTimeout: .seconds(60),
                concurrentHTTP1ConnectionsPerHostSoftLimit: configuration.connectionsPerHost
            ),
            decompression: .disabled
        )
        // No retries: a refused connection or a failed handshake is this call's outcome (AHC
        // would otherwise retry until the connect timeout and report a timeout instead).
        clientConfiguration.connectionPool.retryConnectionEstablishment = false
        // Never traced, even with a tracer bootstrapped in the process: AsyncHTTPClient would
        // record the full URL (the EC, consent strings) in each span and send the trace context
        // to the partner; and a span costs event-loop time on every call.
        clientConfiguration.tracing.tracer = nil
        clientConfiguration.dnsOverride = [host: address.description]
        // Defence in depth: the connected peer must be the address that was checked.
        let check: @Sendable (any Channel) -> EventLoopFuture<Void> = { channel in
            guard let peer = channel.remoteAddress?.ipAddress.flatMap(IPAddress.init), peer == address else {
                channel.close(promise: nil)
                return channel.eventLoop.makeFailedFuture(PinnedAddressMismatch())
            }
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        clientConfiguration.http1_1ConnectionDebugInitializer = check
        clientConfiguration.http2ConnectionDebugInitializer = check
        return HTTPClient(eventLoopGroup: eventLoopGroup, configuration: clientConfiguration)
    }
}

/// A connection reached an address other than the one that was checked.
struct PinnedAddressMismatch: Error, CustomStringConvertible {
    var description: String { "connected peer is not the checked address" }
}
