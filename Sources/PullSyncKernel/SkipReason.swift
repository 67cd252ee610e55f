/// Why a partner was not called for a request. Every skip has exactly one reason; the
/// raw value names it in metrics, logs and `pullsync explain`.
public enum SkipReason: String, Sendable, Hashable, CaseIterable {
    /// The route is not organic (sync, identify, auction, admin, the product's own).
    case route
    /// No EC, or one that is not well formed.
    case invalidEC = "invalid_ec"
    /// A well-formed EC the graph doesn't know and the host didn't issue on this request.
    case unknownEC = "unknown_ec"
    /// The host denied consent (no partner is called), the host's per-partner policy refused
    /// the partner, or the EC's consent was withdrawn.
    case consent
    /// TCF applies and the partner has no TCF consent: no `tcf_vendor_id`, no consent for its
    /// vendor ID, no consent for purpose 1, purpose 1 restricted by the publisher, or no TC string.
    case tcfConsent = "tcf_consent"
    /// One of the partner's `gpp_skip_sections` applies to the request.
    case gppSection = "gpp_section"
    /// A US opt-out of sale or sharing: `Sec-GPC: 1`, the US privacy string, or a GPP US section.
    case usOptOut = "us_opt_out"
    /// A consent string (TC, GPP or US privacy) doesn't decode, so consent can't be verified.
    case malformedConsent = "malformed_consent"
    /// The partner is disabled for pull sync (in its manifest, or by a load error).
    case disabled
    /// The partner's UID is present and younger than its TTL.
    case fresh
    /// The partner's per-EC limit for the window is used up.
    case rateLimited = "rate_limited"
    /// The partner's circuit is open after failures.
    case circuitOpen = "circuit_open"
    /// The partner's calls-per-second budget is used up.
    case budget
    /// A call to this partner for this EC is already in flight (an earlier page view's).
    case inFlight = "in_flight"
    /// The partner already has its maximum of calls in flight (it may be hanging).
    case partnerBusy = "partner_busy"
    /// The built URL is not `https` or its host is not on the allow-list.
    case badURL = "bad_url"
    /// The partner's adapter could not build a request (for example an unresolved secret).
    case adapterError = "adapter_error"
    /// Eligible, but the request's `maxCallsPerRequest` was reached; a later request will call it.
    case deferred
    /// The identity graph or rate-limit store failed; pull sync skips rather than guessing.
    case storeUnavailable = "store_unavailable"
    /// The partner asked for a pause (`429` or `503` with `Retry-After`) that has not ended.
    case partnerPaused = "partner_paused"
    /// A recent decision for this EC, under the same consent signals, found nothing to call
    /// until a time not yet reached (every UID fresh, or refused by consent), or left nothing
    /// once its calls stored their UIDs: skipped at the gate, with no store read.
    case freshMemo = "fresh_memo"
}

/// One partner's decision for one request.
public enum Decision: Sendable, Hashable, CustomStringConvertible {
    /// Call the partner.
    case dispatch
    /// Don't call it, for this reason.
    case skip(SkipReason)

    /// `dispatch` or `skip`.
    package var kind: String {
        switch self {
        case .dispatch: "dispatch"
        case .skip: "skip"
        }
    }

    /// `dispatch`, or the skip reason.
    package var reason: String {
        switch self {
        case .dispatch: "dispatch"
        case .skip(let reason): reason.rawValue
        }
    }

    public var description: String {
        switch self {
        case .dispatch: "dispatch"
        case .skip(let reason): "skip (\(reason.rawValue))"
        }
    }
}

/// A decision together with the partner it is about.
public struct PartnerDecision: Sendable, Hashable {
    /// The partner's manifest ID.
    public var partnerID: String
    /// Whether the partner is called, or why not.
    public var decision: Decision

    /// Pairs `decision` with the partner it is about.
    public init(partnerID: String, decision: Decision) {
        self.partnerID = partnerID
        self.decision = decision
    }
}
