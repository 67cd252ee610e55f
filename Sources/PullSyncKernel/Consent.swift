/// The consent rules a kernel applies to a request's signals (``ConsentStrings``). The spec's
/// rules (TCF v2, GPP, US privacy, GPC) are `IABConsentRules`, in module `PullSyncConsent`;
/// this seam keeps the consent-string decoders out of the kernel.
public protocol ConsentRules: Sendable {
    /// Whether the request denies every partner, and why; `nil` when partners may be
    /// considered. Runs on the request path before anything is queued, so it must be cheap.
    func requestDenial(_ strings: ConsentStrings, host: ConsentDecision) -> ConsentDenial?
    /// The per-partner rules for one request: what they need from the signals (the TC
    /// string) is read once, here.
    func partnerRules(for strings: ConsentStrings) -> any PartnerConsentRules
}

/// The per-partner consent rules for one request's signals.
public protocol PartnerConsentRules: Sendable {
    /// A denial of every partner found only when reading the per-partner signals (a TC string
    /// that doesn't decode); `nil` when each partner is decided on its own.
    var requestDenial: ConsentDenial? { get }
    /// Why a partner with `requirements` may not be called, or `nil` when its consent allows it.
    func denial(for requirements: PartnerConsentRequirements) -> ConsentDenial?
}

/// Why consent stops pull sync: for the whole request, or for one partner.
public struct ConsentDenial: Sendable, Hashable, CustomStringConvertible {
    /// The skip reason it is counted and explained under.
    public var reason: SkipReason
    /// What the signals said, e.g. `US privacy string 1YYN opts out of sale`.
    public var detail: String
    /// An affirmative denial (the host denied consent, GPC, an opt-out of sale or sharing): a
    /// known EC that arrives with it is withdrawn. A string that merely fails to decode, or a
    /// per-partner TCF refusal, withdraws nothing.
    public var withdraws: Bool

    /// Creates a denial counted under `reason`; set `withdraws` only for an affirmative denial.
    public init(reason: SkipReason, detail: String, withdraws: Bool) {
        self.reason = reason
        self.detail = detail
        self.withdraws = withdraws
    }

    public var description: String { "\(reason.rawValue): \(detail)" }
}

/// Extra per-partner consent rules of the host's, applied after the standard ones (TCF,
/// GPP skip sections): a deployment with its own consent platform can refuse partners here.
public protocol PartnerConsentPolicy: Sendable {
    /// Whether a partner with these requirements may be called for the request.
    func allows(_ requirements: PartnerConsentRequirements) -> Bool
}

/// The host's consent decision for one request, and optionally extra per-partner rules.
///
/// The request's own signals (TC string, GPP, US privacy, GPC) travel in ``ConsentStrings``
/// and are read by the kernel's ``ConsentRules``.
public struct ConsentDecision: Sendable {
    /// The host's decision: `false` means no partner is called, and a known EC is withdrawn.
    public var granted: Bool
    /// Extra per-partner rules; `nil` for none.
    public var partnerPolicy: (any PartnerConsentPolicy)?

    /// Creates the host's decision, with optional extra per-partner rules.
    public init(granted: Bool, partnerPolicy: (any PartnerConsentPolicy)? = nil) {
        self.granted = granted
        self.partnerPolicy = partnerPolicy
    }

    /// Consent granted, no extra per-partner rules.
    public static let granted = ConsentDecision(granted: true)
    /// Consent denied.
    public static let denied = ConsentDecision(granted: false)

    /// The denial of a partner by ``partnerPolicy``, if it refuses it.
    package func policyDenial(of requirements: PartnerConsentRequirements) -> ConsentDenial? {
        guard let partnerPolicy, !partnerPolicy.allows(requirements) else { return nil }
        return ConsentDenial(reason: .consent, detail: "the host's per-partner policy refuses it", withdraws: false)
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
    /// The host's consent decision for the request.
    public var consent: ConsentDecision
    /// The request's consent signals: decoded for per-partner consent, and passed on raw to
    /// partners whose templates ask for them.
    public var consentStrings: ConsentStrings
    /// The browser's IP. Only sent to partners when the deployment opts in.
    public var clientIP: String?
    /// Whether the browser made it: only then is the EC recorded as seen and its consent
    /// signals kept as its snapshot. A backfill's requests are not.
    package var fromBrowser = true

    /// Describes one organic request; by default it carries no consent signals and no client IP.
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
