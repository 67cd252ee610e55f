/// One partner call, decided and built, waiting to be sent.
package struct PlannedCall: Sendable {
    /// The partner as it runs (definition, protection, metrics).
    package var partner: RunningPartner
    package var partnerID: String { partner.id }
    package var request: PullRequest
    package var context: PullContext
    /// The graph entry eligibility saw, for the conditional write.
    package var expected: PartnerUID?
    /// Whether this call is its partner's half-open circuit probe.
    var isProbe: Bool = false
    /// What a known EC's combined step counted for this call, when it tried it.
    var preadmission: LeasedAdmission?
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
    package var calls: [PlannedCall]
    /// The EC's hash as the record read carries it, so that making the calls doesn't build it again.
    package var ecHash: String?
    /// Set when the whole request was skipped for one reason (route, EC, consent, unknown EC, store).
    public var requestSkip: SkipReason?
    /// `explain` only: this node's fresh-EC memo holds for the request, so a real page view
    /// with it skips at the gate (`fresh_memo`); the decisions are what a full decision finds.
    public var freshMemoHolds = false
    /// Partners (ids) revoked for the EC: the request's consent refused them, and their UID was
    /// stored or a call to them was in flight. `explain` lists what would be revoked.
    public var revoked: [String] = []
    /// Set when the memo may hold for the EC once every call has stored a UID.
    var memoSeed: FreshECMemo.Seed?

    /// The decision for `partnerID`, if one was made.
    public func decision(for partnerID: String) -> Decision? {
        decisions.first { $0.partnerID == partnerID }?.decision
    }
}

/// What one call came to.
package struct CallResult: Sendable, Hashable {
    package var partnerID: String
    package var outcome: PullOutcome
    /// What became of the UID write; `nil` when there was nothing to write or the store failed.
    package var write: WriteResult?
    /// How long the call took.
    package var duration: Duration
    /// The HTTP status, when a response arrived.
    package var status: Int?
    /// The UID stored, with its partner's ordinal: fresh from now on.
    var stored: FreshECMemo.KeptUID?
}

/// One call made by ``PullKernel/probe(partnerID:edgeCookie:)``: what was sent and what came back.
package struct ProbeResult: Sendable {
    package var partnerID: String
    /// The request as built (print it with `description` or `redactedHeaders`; never raw headers).
    package var request: PullRequest
    /// The HTTP status, when a response arrived.
    package var status: Int?
    package var outcome: PullOutcome
    package var duration: Duration
}

/// The whole story of one organic request: every decision and every call's result.
package struct RequestReport: Sendable {
    package var plan: RequestPlan
    package var results: [CallResult]
}

