/// One partner as the kernel sees it: the policy that decides whether to call it, and the
/// adapter that speaks its protocol.
public struct Partner: Sendable {
    /// `^[a-z0-9_-]{1,32}$`, unique in a registry.
    public var id: String
    /// A human-readable name.
    public var name: String
    /// The identity graph key for this partner's UIDs (a lowercased DNS name, unique).
    public var sourceDomain: String
    /// Whether pull sync is enabled for this partner.
    public var pullEnabled: Bool
    /// Why the partner is disabled when it was enabled in its manifest (a missing secret).
    /// Never contains a secret value.
    public var disabledReason: String?
    /// When and how it may be called: hosts, freshness, limits, deadline, consent.
    public var policy: PartnerPolicy
    /// Builds requests and classifies responses.
    public var adapter: any PartnerAdapter
    /// How its UID appears as an OpenRTB EID (the manifest's `eid:`; by default `source` is
    /// ``sourceDomain`` and `atype` 3).
    public var eid: EIDMapping
    /// Builds the request to its opt-out endpoint (the manifest's `optout:`), sent once when an
    /// EC whose UID it had is withdrawn or it is revoked for one; `nil` when it has none. Only
    /// `makeRequest` is used: the answer is judged by its status.
    public var optOut: (any PartnerAdapter)?

    /// Identifiers that would collide with the graph's own fields.
    package static let reservedIDs: Set<String> = [
        "ec", "eids", "ec-consent", "eids-truncated", "synthetic", "ts", "version", "env",
    ]

    package init(
        id: String,
        name: String? = nil,
        sourceDomain: String,
        pullEnabled: Bool = true,
        disabledReason: String? = nil,
        policy: PartnerPolicy,
        adapter: any PartnerAdapter,
        eid: EIDMapping? = nil,
        optOut: (any PartnerAdapter)? = nil
    ) {
        self.optOut = optOut
        self.id = id
        self.name = name ?? id
        self.sourceDomain = HostName.normalize(sourceDomain)
        self.pullEnabled = pullEnabled
        self.disabledReason = disabledReason
        self.policy = policy
        self.adapter = adapter
        self.eid = eid ?? EIDMapping(source: sourceDomain)
    }

    /// Whether `id` matches `^[a-z0-9_-]{1,32}$` and is not reserved.
    public static func isValidID(_ id: some StringProtocol) -> Bool {
        let count = id.utf8.count
        guard count >= 1, count <= 32, !reservedIDs.contains(String(id)) else { return false }
        return id.utf8.allSatisfy { byte in
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x5F || byte == 0x2D
        }
    }
}

/// When and how a partner may be called, as its manifest says (`pull.allowed_hosts`, `pull.ttl`,
/// `pull.rate_limit`, `pull.timeout`, `pull.budget_per_second`, `consent`): one value shared by
/// the validated manifest and the running ``Partner``, with the defaults in one place.
public struct PartnerPolicy: Sendable, Hashable {
    /// Hosts the pull URL may point at.
    public var allowedHosts: AllowedHosts
    /// A stored UID older than this is stale. Default 86,400 s.
    public var ttl: Duration
    /// Calls per EC per window.
    public var rateLimit: RateLimitPolicy
    /// The whole call's deadline. Default 1 s.
    public var timeout: Duration
    /// Calls per second across all traffic, or `nil` for no budget.
    public var budgetPerSecond: Double?
    /// Which consent signals this partner needs.
    public var consent: PartnerConsentRequirements

    /// A policy with the defaults for whatever is not given.
    public init(
        allowedHosts: AllowedHosts,
        ttl: Duration = .seconds(86_400),
        rateLimit: RateLimitPolicy = RateLimitPolicy(),
        timeout: Duration = .seconds(1),
        budgetPerSecond: Double? = nil,
        consent: PartnerConsentRequirements = PartnerConsentRequirements()
    ) {
        self.allowedHosts = allowedHosts
        self.ttl = ttl
        self.rateLimit = rateLimit
        self.timeout = timeout
        self.budgetPerSecond = budgetPerSecond
        self.consent = consent
    }
}

/// A partner's per-EC rate limit: at most `calls` per `window` for key `pull:{partner}:{ec_hash}`.
public struct RateLimitPolicy: Sendable, Hashable {
    /// Calls allowed per window. Default 10.
    public var calls: Int
    /// The sliding window. Default one hour.
    public var window: Duration

    /// Creates a policy of `calls` per sliding `window`; the default is 10 per hour.
    public init(calls: Int = 10, window: Duration = .seconds(3600)) {
        self.calls = calls
        self.window = window
    }
}

/// The consent signals a partner needs beyond the host's decision.
public struct PartnerConsentRequirements: Sendable, Hashable {
    /// The partner's IAB TCF vendor ID, if it has one.
    public var tcfVendorID: Int?
    /// GPP section IDs in which this partner must be skipped.
    public var gppSkipSections: Set<Int>

    /// Creates the requirements; the defaults ask for nothing beyond the host's decision.
    public init(tcfVendorID: Int? = nil, gppSkipSections: Set<Int> = []) {
        self.tcfVendorID = tcfVendorID
        self.gppSkipSections = gppSkipSections
    }
}
