/// Everything `pullsync serve` is told. Every value but `partnersDirectory` has the
/// contract's default.
public struct EdgeServiceConfiguration: Sendable {
    /// Where the partner manifests are.
    public var partnersDirectory: String
    /// Listen address. Default `127.0.0.1`.
    public var host: String
    /// Listen port. Default 8080; 0 picks a free port.
    public var port: Int
    /// The store URL: `memory:` (lost on exit); `sqlite:PATH`, `postgres://…` where available.
    public var store: String
    /// Organic pages are proxied from here when set (`http(s)://host[:port]`), else a built-in page answers.
    public var origin: String?
    /// Extra trust roots (PEM) for partner TLS.
    public var tlsCAFile: String?
    /// Development switch: partner targets on loopback allowed.
    public var allowLoopback: Bool
    /// Read the client IP from the first address of this header instead of the TCP peer.
    public var clientIPHeader: String?
    /// Kernel settings (fan-out, caps, routes, grace period).
    public var pullSync: PullSyncConfigurationOverrides

    public init(
        partnersDirectory: String = "partners.d",
        host: String = "127.0.0.1",
        port: Int = 8080,
        store: String = "memory:",
        origin: String? = nil,
        tlsCAFile: String? = nil,
        allowLoopback: Bool = false,
        clientIPHeader: String? = nil,
        pullSync: PullSyncConfigurationOverrides = PullSyncConfigurationOverrides()
    ) {
        self.partnersDirectory = partnersDirectory
        self.host = host
        self.port = port
        self.store = store
        self.origin = origin
        self.tlsCAFile = tlsCAFile
        self.allowLoopback = allowLoopback
        self.clientIPHeader = clientIPHeader
        self.pullSync = pullSync
    }
}

/// Kernel settings the service lets an operator change; `nil` keeps the kernel's default.
public struct PullSyncConfigurationOverrides: Sendable {
    public var perRequestConcurrency: Int?
    public var maxCallsPerRequest: Int?
    public var maxInFlightCalls: Int?
    public var queueCapacity: Int?
    public var shutdownGracePeriod: Duration?
    /// Turns pull sync off entirely (pages are still served): the baseline for benchmarks.
    public var disabled: Bool

    public init(
        perRequestConcurrency: Int? = nil,
        maxCallsPerRequest: Int? = nil,
        maxInFlightCalls: Int? = nil,
        queueCapacity: Int? = nil,
        shutdownGracePeriod: Duration? = nil,
        disabled: Bool = false
    ) {
        self.perRequestConcurrency = perRequestConcurrency
        self.maxCallsPerRequest = maxCallsPerRequest
        self.maxInFlightCalls = maxInFlightCalls
        self.queueCapacity = queueCapacity
        self.shutdownGracePeriod = shutdownGracePeriod
        self.disabled = disabled
    }
}
