/// One partner call, decided and built, waiting to be sent.
public struct PlannedCall: Sendable {
    /// The partner as it runs (definition, protection, metrics).
    package var partner: RunningPartner
    public var partnerID: String { partner.id }
    public var request: PullRequest
    public var context: PullContext
    /// The graph entry eligibility saw, for the conditional write.
    public var expected: PartnerUID?
    /// Whether this call is its partner's half-open circuit probe.
    var isProbe: Bool = false
}

/// The outcome of the checks that need no store.
public enum GateResult: Sendable, Hashable {
    /// The request may go on, with this EC.
    case pass(EdgeCookie)
    /// Every partner is skipped for this reason.
    case skip(SkipReason)
}

/// What the kernel decided for one organic request.
public struct RequestPlan: Sendable {
    /// The EC, when the request got as far as having a valid one.
    public var edgeCookie: EdgeCookie?
    /// One decision per partner considered, in the order they were decided.
    public var decisions: [PartnerDecision]
    /// The calls to make, in the fair order.
    public var calls: [PlannedCall]
    /// Set when the whole request was skipped for one reason (route, EC, consent, unknown EC, store).
    public var requestSkip: SkipReason?

    /// The decision for `partnerID`, if one was made.
    public func decision(for partnerID: String) -> Decision? {
        decisions.first { $0.partnerID == partnerID }?.decision
    }
}

/// What one call came to.
public struct CallResult: Sendable, Hashable {
    public var partnerID: String
    public var outcome: PullOutcome
    /// What became of the UID write; `nil` when there was nothing to write or the store failed.
    public var write: WriteResult?
    /// How long the call took.
    public var duration: Duration
    /// The HTTP status, when a response arrived.
    public var status: Int?
}

/// One call made by ``PullKernel/probe(partnerID:edgeCookie:)``: what was sent and what came back.
public struct ProbeResult: Sendable {
    public var partnerID: String
    /// The request as built (print it with `description` or `redactedHeaders`; never raw headers).
    public var request: PullRequest
    /// The HTTP status, when a response arrived.
    public var status: Int?
    public var outcome: PullOutcome
    public var duration: Duration
}

/// The whole story of one organic request: every decision and every call's result.
public struct RequestReport: Sendable {
    public var plan: RequestPlan
    public var results: [CallResult]
}

