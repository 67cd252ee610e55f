public import PullSync
public import PullSyncStorage

/// Everything `pullsync serve` is told. Every value has the
/// contract's default.
public struct EdgeServiceConfiguration: Sendable {
    /// Where the partner manifests are.
    public var partnersDirectory: String
    /// Listen address. Default `127.0.0.1`.
    public var host: String
    /// Listen port. Default 8080; 0 picks a free port.
    public var port: Int
    /// The store URL: `sqlite:PATH` (embedded, persistent; the default `sqlite:pullsync.db`),
    /// `postgres://USER@HOST/DB` (shared by several nodes) or `memory:` (lost on exit).
    public var store: String
    /// Organic pages are proxied from here when set (`http(s)://host[:port]`), else a built-in page answers.
    public var origin: String?
    /// With ``origin``: the header that carries the request's consented OpenRTB EIDs to the origin
    /// (``EIDsHeader``; absent when there are none). A header of that name from the browser is
    /// always removed. Default `nil`: no EIDs are sent.
    public var eidsHeader: String?
    /// Extra trust roots (PEM) for partner TLS.
    public var tlsCAFile: String?
    /// Development switch: partner targets on loopback allowed.
    public var allowLoopback: Bool
    /// Read the client IP from the first address of this header instead of the TCP peer.
    public var clientIPHeader: String?
    /// Kernel settings (fan-out, caps, routes, grace period). Its `allowLoopback` is set from
    /// the service's own switch.
    public var pullSync: PullSyncConfiguration
    /// Whether pull sync runs at all (pages are served either way): off is the benchmarks' baseline.
    public var pullSyncEnabled: Bool
    /// How long the store keeps ECs (the UIDs' age is ``pullSync``'s `maxUIDAge`).
    public var retention: Retention
    /// When pull sync gives way to pages (see `CPUPressureGovernor`); `nil` never does. Default on.
    public var cpuPressure: CPUPressureGovernor.Configuration?
    /// Whether pull sync runs below the pages' priority (see `BackgroundExecutor`). Default on.
    public var pullSyncInBackground: Bool

    /// Creates a configuration; every default is the one documented on its property.
    public init(
        partnersDirectory: String = "partners.d",
        host: String = "127.0.0.1",
        port: Int = 8080,
        store: String = StoreURL.defaultURL,
        origin: String? = nil,
        eidsHeader: String? = nil,
        tlsCAFile: String? = nil,
        allowLoopback: Bool = false,
        clientIPHeader: String? = nil,
        pullSync: PullSyncConfiguration = PullSyncConfiguration(),
        pullSyncEnabled: Bool = true,
        retention: Retention = Retention(),
        cpuPressure: CPUPressureGovernor.Configuration? = CPUPressureGovernor.Configuration(),
        pullSyncInBackground: Bool = true
    ) {
        self.pullSyncInBackground = pullSyncInBackground
        self.partnersDirectory = partnersDirectory
        self.host = host
        self.port = port
        self.store = store
        self.origin = origin
        self.eidsHeader = eidsHeader
        self.tlsCAFile = tlsCAFile
        self.allowLoopback = allowLoopback
        self.clientIPHeader = clientIPHeader
        self.pullSync = pullSync
        self.pullSyncEnabled = pullSyncEnabled
        self.retention = retention
        self.cpuPressure = cpuPressure
    }
}
