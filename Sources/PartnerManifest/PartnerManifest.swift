public import PullSyncKernel

/// One partner manifest, validated. Secret references are kept as references: resolving them is
/// the registry's job, so that `pullsync check` can lint manifests without the secrets present.
public struct PartnerManifest: Sendable {
    /// The file it came from, as the caller gave it.
    public var path: String
    /// `^[a-z0-9_-]{1,32}$`, not reserved (``Partner/isValidID(_:)``).
    public var id: String
    /// A human-readable name; the `id` when the manifest gives none.
    public var name: String
    /// The identity graph key: a DNS name, lowercased, without a trailing dot.
    public var sourceDomain: String
    /// `pull.enabled`.
    public var pullEnabled: Bool
    /// `pull.allowed_hosts`, normalized.
    public var allowedHosts: AllowedHosts
    /// `pull.ttl`.
    public var ttl: Duration
    /// `pull.rate_limit`.
    public var rateLimit: RateLimitPolicy
    /// `pull.timeout`.
    public var timeout: Duration
    /// `pull.budget_per_second`.
    public var budgetPerSecond: Double?
    /// `consent`.
    public var consent: PartnerConsentRequirements
    /// The request and response shape: URL, query, headers, auth, response parsing.
    public var http: HTTPPullAdapter.Configuration
    /// Where the secret reference's name or path is written, for "secret not resolved" errors.
    public var secretLocation: (line: Int, column: Int)?
    /// Where `id`'s value is written.
    public var idLocation: (line: Int, column: Int)
    /// Where `source_domain`'s value is written.
    public var sourceDomainLocation: (line: Int, column: Int)

    public init(
        path: String,
        id: String,
        name: String? = nil,
        sourceDomain: String,
        pullEnabled: Bool = true,
        allowedHosts: AllowedHosts,
        ttl: Duration = .seconds(86_400),
        rateLimit: RateLimitPolicy = RateLimitPolicy(),
        timeout: Duration = .seconds(1),
        budgetPerSecond: Double? = nil,
        consent: PartnerConsentRequirements = PartnerConsentRequirements(),
        http: HTTPPullAdapter.Configuration,
        secretLocation: (line: Int, column: Int)? = nil,
        idLocation: (line: Int, column: Int) = (1, 1),
        sourceDomainLocation: (line: Int, column: Int) = (1, 1)
    ) {
        self.path = path
        self.id = id
        self.name = name ?? id
        self.sourceDomain = HostName.normalize(sourceDomain)
        self.pullEnabled = pullEnabled
        self.allowedHosts = allowedHosts
        self.ttl = ttl
        self.rateLimit = rateLimit
        self.timeout = timeout
        self.budgetPerSecond = budgetPerSecond
        self.consent = consent
        self.http = http
        self.secretLocation = secretLocation
        self.idLocation = idLocation
        self.sourceDomainLocation = sourceDomainLocation
    }

    /// The token reference in `pull.auth`, if any.
    public var secretReference: SecretReference? { http.auth.reference }

    /// Builds the kernel's ``Partner``, speaking the manifest-driven ``HTTPPullAdapter``.
    ///
    /// - Parameters:
    ///   - token: the resolved secret of ``secretReference``; `nil` when there is none or it
    ///     did not resolve (then building a request fails, naming the reference).
    ///   - disabledReason: why the partner is disabled although its manifest enables it
    ///     (a secret that did not resolve). Never a secret value.
    public func makePartner(token: Secret?, disabledReason: String? = nil) -> Partner {
        Partner(
            id: id,
            name: name,
            sourceDomain: sourceDomain,
            pullEnabled: pullEnabled,
            disabledReason: disabledReason,
            allowedHosts: allowedHosts,
            ttl: ttl,
            rateLimit: rateLimit,
            timeout: timeout,
            budgetPerSecond: budgetPerSecond,
            consent: consent,
            adapter: HTTPPullAdapter(configuration: http, token: token)
        )
    }
}
