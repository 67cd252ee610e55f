/// Decides a partner's own consent from the request's signals (TCF, GPP, US privacy).
public protocol PartnerConsentPolicy: Sendable {
    /// Whether the request's signals let this partner be called.
    func allows(_ requirements: PartnerConsentRequirements) -> Bool
}

/// The consent decision for one request: the host's global decision, and optionally a
/// per-partner policy over the request's consent signals.
public struct ConsentDecision: Sendable {
    /// The host's decision: `false` means no partner is called.
    public var granted: Bool
    /// Per-partner consent; `nil` when no per-partner signal applies.
    public var partnerPolicy: (any PartnerConsentPolicy)?

    public init(granted: Bool, partnerPolicy: (any PartnerConsentPolicy)? = nil) {
        self.granted = granted
        self.partnerPolicy = partnerPolicy
    }

    /// Consent granted, no per-partner signals.
    public static let granted = ConsentDecision(granted: true)
    /// Consent denied.
    public static let denied = ConsentDecision(granted: false)

    /// Whether a partner with `requirements` may be called, given the request's signals.
    ///
    /// - The host's decision must be granted.
    /// - A partner is skipped when one of its `gppSkipSections` applies to the request.
    /// - Where a TCF string is present (TCF applies), the per-partner policy decides; with no
    ///   policy to read it, every partner is skipped: consent that can't be verified is no consent.
    /// - Otherwise the per-partner policy, when there is one, decides.
    public func allows(_ requirements: PartnerConsentRequirements, signals: ConsentStrings) -> Bool {
        guard granted else { return false }
        if !requirements.gppSkipSections.isEmpty,
            signals.gppSectionIDs.contains(where: requirements.gppSkipSections.contains)
        {
            return false
        }
        if let partnerPolicy { return partnerPolicy.allows(requirements) }
        return signals.tcf == nil
    }
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
    /// Raw consent strings, for partners whose templates pass them on.
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
