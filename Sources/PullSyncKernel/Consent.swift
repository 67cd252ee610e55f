/// Extra per-partner consent rules of the host's, applied after the standard ones (TCF,
/// GPP skip sections): a deployment with its own consent platform can refuse partners here.
public protocol PartnerConsentPolicy: Sendable {
    /// Whether a partner with these requirements may be called for the request.
    func allows(_ requirements: PartnerConsentRequirements) -> Bool
}

/// The host's consent decision for one request, and optionally extra per-partner rules.
///
/// The request's own signals (TC string, GPP, US privacy, GPC) travel in ``ConsentStrings``
/// and are decoded by the kernel (``ConsentSignals``, ``PartnerConsent``).
public struct ConsentDecision: Sendable {
    /// The host's decision: `false` means no partner is called, and a known EC is withdrawn.
    public var granted: Bool
    /// Extra per-partner rules; `nil` for none.
    public var partnerPolicy: (any PartnerConsentPolicy)?

    public init(granted: Bool, partnerPolicy: (any PartnerConsentPolicy)? = nil) {
        self.granted = granted
        self.partnerPolicy = partnerPolicy
    }

    /// Consent granted, no extra per-partner rules.
    public static let granted = ConsentDecision(granted: true)
    /// Consent denied.
    public static let denied = ConsentDecision(granted: false)
}

/// What the host knows about one organic request, handed to the dispatcher after the
/// response is on its way.
public struct OrganicRequest: Sendable {
    /// The request path (a query string is ignored).
    public var path: String
    /// The raw EC cookie value, if the request carried one or the host issued one.
    public var edgeCookie: String?
    /// The host issued `edgeCookie` on this very request (so it counts as known).
    public var ecIssuedOnThisRequest: Bool
    public var consent: ConsentDecision
    /// The request's consent signals: decoded for per-partner consent, and passed on raw to
    /// partners whose templates ask for them.
    public var consentStrings: ConsentStrings
    /// The browser's IP. Only sent to partners when the deployment opts in.
    public var clientIP: String?

    public init(
        path: String,
        edgeCookie: String?,
        ecIssuedOnThisRequest: Bool = false,
        consent: ConsentDecision,
        consentStrings: ConsentStrings = ConsentStrings(),
        clientIP: String? = nil
    ) {
        self.path = path
        self.edgeCookie = edgeCookie
        self.ecIssuedOnThisRequest = ecIssuedOnThisRequest
        self.consent = consent
        self.consentStrings = consentStrings
        self.clientIP = clientIP
    }
}
