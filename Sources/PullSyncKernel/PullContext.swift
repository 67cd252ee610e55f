/// What an adapter may use to build one partner's request.
public struct PullContext: Sendable {
    /// The EC being synced.
    public var edgeCookie: EdgeCookie
    /// The partner being called.
    public var partnerID: String
    /// The partner's source domain.
    public var sourceDomain: String
    /// When the request is built.
    public var now: Timestamp
    /// The browser's IP, only when the deployment opted in to forwarding it.
    public var clientIP: String?
    /// The request's raw consent strings, passed through for partners that want them.
    public var consentStrings: ConsentStrings

    /// Creates a context (the kernel makes one per call; adapter tests and fuzzers make their own).
    public init(
        edgeCookie: EdgeCookie,
        partnerID: String,
        sourceDomain: String,
        now: Timestamp,
        clientIP: String? = nil,
        consentStrings: ConsentStrings = ConsentStrings()
    ) {
        self.edgeCookie = edgeCookie
        self.partnerID = partnerID
        self.sourceDomain = sourceDomain
        self.now = now
        self.clientIP = clientIP
        self.consentStrings = consentStrings
    }
}

/// The raw consent signals of a request, as the host read them. The kernel decodes them
/// (``ConsentSignals``); templates pass the strings on as they are.
public struct ConsentStrings: Sendable, Hashable {
    /// TCF v2 TC string (the `euconsent-v2` cookie).
    public var tcf: String?
    /// GPP string.
    public var gpp: String?
    /// Applicable GPP section IDs (`gpp_sid`); empty when not given.
    public var gppSectionIDs: [Int]
    /// US privacy (CCPA) string, e.g. `1YNN`.
    public var usPrivacy: String?
    /// The browser sent `Sec-GPC: 1` (Global Privacy Control): an opt-out of sale and sharing.
    public var globalPrivacyControl: Bool

    /// Creates a set of raw consent strings; by default the request carries none.
    public init(
        tcf: String? = nil,
        gpp: String? = nil,
        gppSectionIDs: [Int] = [],
        usPrivacy: String? = nil,
        globalPrivacyControl: Bool = false
    ) {
        self.tcf = tcf
        self.gpp = gpp
        self.gppSectionIDs = gppSectionIDs
        self.usPrivacy = usPrivacy
        self.globalPrivacyControl = globalPrivacyControl
    }
}
