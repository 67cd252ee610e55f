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

/// The raw consent strings of a request, as the host read them.
public struct ConsentStrings: Sendable, Hashable {
    /// TCF v2 TC string.
    public var tcf: String?
    /// GPP string.
    public var gpp: String?
    /// Applicable GPP section IDs.
    public var gppSectionIDs: [Int]
    /// US privacy (CCPA) string.
    public var usPrivacy: String?

    public init(tcf: String? = nil, gpp: String? = nil, gppSectionIDs: [Int] = [], usPrivacy: String? = nil) {
        self.tcf = tcf
        self.gpp = gpp
        self.gppSectionIDs = gppSectionIDs
        self.usPrivacy = usPrivacy
    }
}
