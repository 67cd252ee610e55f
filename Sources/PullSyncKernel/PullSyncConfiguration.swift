/// How the kernel decides and fans out. Every value has the spec's default.
public struct PullSyncConfiguration: Sendable {
    /// Calls in flight at once for one organic request (a sliding window). Default 3.
    public var perRequestConcurrency: Int
    /// Calls per organic request; the rest wait for a later request of the same EC.
    /// Default `nil`: no cap.
    public var maxCallsPerRequest: Int?
    /// Calls in flight at once across all requests. Default 128.
    public var maxInFlightCalls: Int
    /// Calls in flight at once to one partner, across all requests; more are skipped as
    /// `partner_busy`, so a partner that hangs can't take every call slot. Default `nil`:
    /// half of `maxInFlightCalls`, and at least `perRequestConcurrency`. (Skipped calls are
    /// tried again on the EC's next organic request.)
    public var maxInFlightPerPartner: Int?
    /// Organic requests waiting to be processed; more are dropped and counted. Default 1,024.
    public var queueCapacity: Int
    /// Which paths are organic.
    public var routes: RouteFilter
    /// What a well-formed EC looks like.
    public var edgeCookieFormat: any EdgeCookieFormat
    /// Development switch: lets partner URLs point at loopback hosts, over `https` or `http`.
    public var allowLoopback: Bool
    /// Sends the browser's IP to partners whose templates ask for `{client_ip}`. Default off.
    public var forwardClientIP: Bool
    /// How long shutdown waits for in-flight calls before cancelling them. Default 5 s.
    public var shutdownGracePeriod: Duration
    /// The largest response body read. Default 64 KiB.
    public var maxBodyBytes: Int
    /// When a failing partner's circuit opens and how it recovers.
    public var circuitBreaker: CircuitBreakerPolicy
    /// How long a shared store's call lease outlasts the partner's timeout: covers the wait
    /// for a call slot and the UID write. Default 30 s.
    public var leaseMargin: Duration
    /// How many ECs this node remembers as having nothing to call until a known time (every
    /// partner's UID fresh, disabled or refused by the request's consent), so that their page
    /// views skip at the gate (`fresh_memo`) with no queueing and no store read. A new entry
    /// replaces the oldest. Default 65,536 (a few MiB); 0 turns it off.
    public var freshMemoCapacity: Int
    /// The host's domain, given as `inserter` in the OpenRTB EIDs it reads
    /// (``PullKernel/eids(for:consent:strings:)``). Default `nil`: left out.
    public var eidInserter: String?
    /// How old a partner UID may be and still be offered as an EID: a UID not refreshed within
    /// this long (its partner stopped answering, or the browser stayed away) is left out, as is
    /// one past the expiry its partner gave. Default 90 days.
    public var maxUIDAge: Duration

    /// Creates a configuration; every default is the one documented on its property.
    ///
    /// A limit below 1 is a programming error.
    public init(
        perRequestConcurrency: Int = 3,
        maxCallsPerRequest: Int? = nil,
        maxInFlightCalls: Int = 128,
        maxInFlightPerPartner: Int? = nil,
        queueCapacity: Int = 1024,
        routes: RouteFilter = RouteFilter(),
        edgeCookieFormat: any EdgeCookieFormat = DefaultEdgeCookieFormat(),
        allowLoopback: Bool = false,
        forwardClientIP: Bool = false,
        shutdownGracePeriod: Duration = .seconds(5),
        maxBodyBytes: Int = 64 * 1024,
        circuitBreaker: CircuitBreakerPolicy = CircuitBreakerPolicy(),
        leaseMargin: Duration = .seconds(30),
        freshMemoCapacity: Int = 65_536,
        eidInserter: String? = nil,
        maxUIDAge: Duration = .seconds(90 * 86_400)
    ) {
        precondition(perRequestConcurrency >= 1, "perRequestConcurrency must be at least 1")
        precondition(maxCallsPerRequest.map { $0 >= 1 } ?? true, "maxCallsPerRequest must be at least 1")
        precondition(maxInFlightCalls >= 1, "maxInFlightCalls must be at least 1")
        precondition(queueCapacity >= 1, "queueCapacity must be at least 1")
        precondition(maxInFlightPerPartner.map { $0 >= 1 } ?? true, "maxInFlightPerPartner must be at least 1")
        self.perRequestConcurrency = perRequestConcurrency
        self.maxCallsPerRequest = maxCallsPerRequest
        self.maxInFlightCalls = maxInFlightCalls
        self.maxInFlightPerPartner = maxInFlightPerPartner
        self.queueCapacity = queueCapacity
        self.routes = routes
        self.edgeCookieFormat = edgeCookieFormat
        self.allowLoopback = allowLoopback
        self.forwardClientIP = forwardClientIP
        self.shutdownGracePeriod = shutdownGracePeriod
        self.maxBodyBytes = maxBodyBytes
        self.circuitBreaker = circuitBreaker
        self.leaseMargin = leaseMargin
        self.freshMemoCapacity = freshMemoCapacity
        self.eidInserter = eidInserter
        self.maxUIDAge = maxUIDAge
    }

    /// The per-partner in-flight cap in force.
    package var effectiveMaxInFlightPerPartner: Int {
        maxInFlightPerPartner ?? max(perRequestConcurrency, maxInFlightCalls / 2)
    }
}
