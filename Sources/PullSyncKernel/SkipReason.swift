/// Why a partner was not called for a request. Every skip has exactly one reason; the
/// raw value names it in metrics, logs and `pullsync explain`.
public enum SkipReason: String, Sendable, Hashable, CaseIterable {
    /// The route is not organic (sync, identify, auction, admin, the product's own).
    case route
    /// No EC, or one that is not well formed.
    case invalidEC = "invalid_ec"
    /// A well-formed EC the graph doesn't know and the host didn't issue on this request.
    case unknownEC = "unknown_ec"
    /// Consent denies it: the host's decision, the partner's own consent, or withdrawal.
    case consent
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
}

/// One partner's decision for one request.
public enum Decision: Sendable, Hashable, CustomStringConvertible {
    case dispatch
    case skip(SkipReason)

    /// `dispatch` or `skip`.
    public var kind: String {
        switch self {
        case .dispatch: "dispatch"
        case .skip: "skip"
        }
    }

    /// `dispatch`, or the skip reason.
    public var reason: String {
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
    public var partnerID: String
    public var decision: Decision

    public init(partnerID: String, decision: Decision) {
        self.partnerID = partnerID
        self.decision = decision
    }
}
