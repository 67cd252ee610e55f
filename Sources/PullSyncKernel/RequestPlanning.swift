/// What planning may change: everything a real request takes (``Committing``), or nothing at
/// all (``Explaining``, for `pullsync explain`). The planner is one function over the two.
protocol PlanningMode: Sendable {
    /// Whether disabled partners are listed and nothing is counted (`explain`).
    var isExplaining: Bool { get }
    /// The EC's record; an EC issued on this request gets its root entry (or, explaining, a
    /// stand-in for it). `signals` are the browser's consent signals, kept as the EC's snapshot
    /// when they changed; `nil` for a request made without the browser (backfill).
    func lookUp(_ edgeCookie: EdgeCookie, issued: Bool, signals: ConsentStrings?, now: Timestamp, kernel: PullKernel)
        async throws -> ECRecord?
    /// Admits a call locally: one per (partner, EC) in flight, then circuit, pause and budget.
    func admit(_ partner: RunningPartner, ecHash: ECHash, now: Timestamp, kernel: PullKernel) -> Admission
    /// Gives back what ``admit(_:ecHash:now:kernel:)`` took, for a call that won't be sent.
    func release(_ partner: RunningPartner, ecHash: ECHash, probe: Bool, kernel: PullKernel)
    /// Counts a batch of calls in the rate limiter (or only reads the counts), leased (in a
    /// shared store) for as long as the longest call of `leasing`.
    func admitRateLimits(
        _ batch: [PlannedCall],
        leasing: [PlannedCall],
        ecHash: ECHash,
        now: Timestamp,
        kernel: PullKernel
    ) async throws -> BatchAdmissions
    /// Counts a partner's decision in metrics.
    func count(_ decision: Decision, for partner: RunningPartner)
    /// Counts a request skipped as a whole.
    func countRequestSkip(_ reason: SkipReason, kernel: PullKernel)
    /// Revokes partners the request's consent refused (or, explaining, only lists them).
    func revoke(_ partners: [RunningPartner], ecHash: String, now: Timestamp, kernel: PullKernel) async
}

/// Planning for real: what the dispatcher and ``PullKernel/process(_:)`` do.
struct Committing: PlanningMode {
    var isExplaining: Bool { false }

    func lookUp(_ edgeCookie: EdgeCookie, issued: Bool, signals: ConsentStrings?, now: Timestamp, kernel: PullKernel)
        async throws -> ECRecord?
    {
        let snapshot = signals.map { ConsentSnapshot($0, seenAt: now) }
        let found: ECRecord
        if issued {
            // Issued on this request: one round trip creates the root entry with its consent
            // snapshot, or returns it as it is (an earlier request of the same page load, or a
            // withdrawal, got there first).
            kernel.metrics.roundTrip(.createRoot)
            found = try await kernel.graph.createRoot(for: edgeCookie, at: now, consent: snapshot)
        } else {
            kernel.metrics.roundTrip(.lookup)
            guard let record = try await kernel.graph.record(ecHash: edgeCookie.hashString) else { return nil }
            found = record
        }
        await kernel.noteSeen(found, signals: signals, now: now)
        return found
    }

    func admit(_ partner: RunningPartner, ecHash: ECHash, now: Timestamp, kernel: PullKernel) -> Admission {
        // One call per partner and EC at a time: a page view arriving while the previous one's
        // call is out must not ask the partner again.
        guard kernel.inFlight.begin(partner.id, ecHash: ecHash) else { return .refused(.inFlight) }
        let admission = partner.protection.admission(at: now)
        if case .refused = admission { kernel.inFlight.end(partner.id, ecHash: ecHash) }
        return admission
    }

    func release(_ partner: RunningPartner, ecHash: ECHash, probe: Bool, kernel: PullKernel) {
        kernel.release(partner, ecHash: ecHash, probe: probe)
    }

    func admitRateLimits(
        _ batch: [PlannedCall],
        leasing: [PlannedCall],
        ecHash: ECHash,
        now: Timestamp,
        kernel: PullKernel
    ) async throws -> BatchAdmissions {
        let requests = kernel.rateLimitRequests(batch, ecHash: ecHash)
        let admitted: BatchAdmissions
        kernel.metrics.roundTrip(.admit)
        if kernel.rateLimiter.sharesLeases {
            admitted = BatchAdmissions(
                leased: try await kernel.rateLimiter.admit(requests, lease: kernel.lease(for: leasing, now: now), at: now)
            )
        } else {
            admitted = BatchAdmissions(counted: try await kernel.rateLimiter.acquire(requests, at: now))
        }
        // A store that answers for fewer calls than asked is broken: count nothing as admitted.
        guard admitted.count == requests.count else {
            throw StoreAnswerMismatch(asked: requests.count, got: admitted.count)
        }
        return admitted
    }

    func count(_ decision: Decision, for partner: RunningPartner) {
        partner.metrics.decision(decision)
    }

    func countRequestSkip(_ reason: SkipReason, kernel: PullKernel) {
        // A request-level skip is counted once per request, not once per partner.
        kernel.metrics.requestSkip(reason)
    }

    func revoke(_ partners: [RunningPartner], ecHash: String, now: Timestamp, kernel: PullKernel) async {
        // An entry made under other signals may hold the revoked UIDs (for EIDs): it goes.
        kernel.freshMemo.forget(ECKey(ecHash: ecHash[...]))
        kernel.metrics.roundTrip(.revoke)
        do {
            let forgotten = Set(
                try await kernel.graph.revoke(
                    partners.map(\.definition.sourceDomain),
                    ecHash: ecHash,
                    at: now,
                    notifying: partners.filter { $0.definition.optOut != nil }.map(\.definition.sourceDomain)
                )
            )
            for partner in partners where forgotten.contains(partner.definition.sourceDomain) {
                partner.metrics.revocation()
            }
        } catch {
            // Tried again on the EC's next request with these signals (nothing is remembered).
            kernel.storeWarnings.write.warning(
                "revoking partners refused by consent failed",
                metadata: ["error": "\(error)"],
                to: kernel.logger
            )
        }
    }
}

/// Planning that changes nothing: no root entry, no budget token, no in-flight place, no
/// rate-limit count, no metric.
struct Explaining: PlanningMode {
    var isExplaining: Bool { true }

    func lookUp(_ edgeCookie: EdgeCookie, issued: Bool, signals: ConsentStrings?, now: Timestamp, kernel: PullKernel)
        async throws -> ECRecord?
    {
        if let record = try await kernel.graph.record(ecHash: edgeCookie.hashString) { return record }
        return issued ? ECRecord(ecHash: edgeCookie.hashString, ecID: edgeCookie.value, createdAt: now) : nil
    }

    func admit(_ partner: RunningPartner, ecHash: ECHash, now: Timestamp, kernel: PullKernel) -> Admission {
        if kernel.inFlight.contains(partner.id, ecHash: ecHash) { return .refused(.inFlight) }
        return partner.protection.peek(at: now).map(Admission.refused) ?? .admitted(probe: false)
    }

    func release(_ partner: RunningPartner, ecHash: ECHash, probe: Bool, kernel: PullKernel) {}

    func admitRateLimits(
        _ batch: [PlannedCall],
        leasing: [PlannedCall],
        ecHash: ECHash,
        now: Timestamp,
        kernel: PullKernel
    ) async throws -> BatchAdmissions {
        var admitted: [LeasedAdmission] = []
        admitted.reserveCapacity(batch.count)
        for call in batch {
            let policy = call.partner.definition.policy.rateLimit
            let key = RateLimitKey(partnerID: call.partnerID, ecHash: ecHash)
            let used = try await kernel.rateLimiter.count(key: key, window: policy.window, at: now)
            admitted.append(used < policy.calls ? .admitted : .rateLimited)
        }
        return BatchAdmissions(leased: admitted)
    }

    func count(_ decision: Decision, for partner: RunningPartner) {}

    func countRequestSkip(_ reason: SkipReason, kernel: PullKernel) {}

    func revoke(_ partners: [RunningPartner], ecHash: String, now: Timestamp, kernel: PullKernel) async {}
}

extension PullKernel {
    func plan<Mode: PlanningMode>(_ request: OrganicRequest, gated: EdgeCookie?, mode: Mode) async -> RequestPlan {
        let edgeCookie: EdgeCookie
        switch gated.map(GateResult.pass) ?? admission(request, memo: !mode.isExplaining).result {
        case .skip(let reason):
            return skipAll(reason, edgeCookie: nil, mode: mode)
        case .pass(let value):
            edgeCookie = value
        }
        var plan = await decidePartners(request, edgeCookie, mode: mode)
        if mode.isExplaining { plan.freshMemoHolds = freshMemoHolds(for: request, edgeCookie) }
        return plan
    }

    /// The decisions for a request that passed the gate with `edgeCookie`.
    private func decidePartners<Mode: PlanningMode>(
        _ request: OrganicRequest,
        _ edgeCookie: EdgeCookie,
        mode: Mode
    ) async -> RequestPlan {
        // The TC string is decoded once per request, before any store work: a malformed one
        // stops every partner.
        let consent = self.consent.partnerRules(for: request.consentStrings)
        if let denial = consent.requestDenial {
            return skipAll(denial.reason, edgeCookie: edgeCookie, mode: mode)
        }
        let now = clock.now()
        let signals = request.fromBrowser ? request.consentStrings : nil

        // An EC issued on this request has no UID yet, so its decisions need no lookup: its root
        // entry is created in the round trip that counts its first calls.
        if request.ecIssuedOnThisRequest, !mode.isExplaining, combined != nil {
            let empty = ECRecord(ecHash: edgeCookie.hashString, ecID: edgeCookie.value, createdAt: now)
            let newRoot = NewRoot(snapshot: signals.map { ConsentSnapshot($0, seenAt: now) })
            if let plan = await planCalls(request, edgeCookie, empty, consent, now, newRoot: newRoot, mode: mode) {
                return plan
            }
        }

        // A known EC: its record read and its due calls counted in one round trip, when the
        // store can. If that fails (nothing of it was stored), the steps go one by one.
        var stepped: (ECRecord?, Preadmitted)?
        if !request.ecIssuedOnThisRequest, !mode.isExplaining, let combined, combined.countsDueCalls,
            let offer = dueCallsOffer(request, edgeCookie, consent, now)
        {
            do {
                // Awaited here rather than in a helper: each async call costs a frame.
                metrics.roundTrip(.lookupAdmit)
                let (found, admissions) = try await combined.record(
                    ecHash: edgeCookie.hashString,
                    admittingDue: offer.calls,
                    limit: offer.cap,
                    lease: offer.lease,
                    at: now
                )
                let counted = try offer.preadmitted(by: admissions, enabled: enabled, partners: partners.count)
                // A store counts nothing for an unknown or withdrawn EC; one that did gets it back.
                if found?.withdrawn ?? true, counted.admissions.contains(.admitted) {
                    await uncount(counted, ecHash: edgeCookie.hashKey, now: now)
                }
                stepped = (found, counted)
            } catch {
                storeWarnings.rateLimiter.warning(
                    "reading a known EC's record with its due admissions failed; trying step by step",
                    metadata: ["error": "\(error)"],
                    to: logger
                )
            }
        }
        let record: ECRecord?
        var preadmitted: Preadmitted?
        do {
            if let (found, counted) = consume stepped {
                if let found { await noteSeen(found, signals: signals, now: now) }
                record = found
                preadmitted = counted
            } else {
                record = try await mode.lookUp(
                    edgeCookie,
                    issued: request.ecIssuedOnThisRequest,
                    signals: signals,
                    now: now,
                    kernel: self
                )
            }
        } catch {
            warnLookupFailed(error)
            return skipAll(.storeUnavailable, edgeCookie: edgeCookie, mode: mode)
        }
        guard let record else { return skipAll(.unknownEC, edgeCookie: edgeCookie, mode: mode) }
        if record.withdrawn { return skipAll(.consent, edgeCookie: edgeCookie, mode: mode) }
        // Without a new root to create, deciding always ends in a plan. The step's answers are
        // handed over (`consume`): taking them out as calls are batched then copies nothing.
        return await planCalls(
            request, edgeCookie, record, consent, now, newRoot: nil, preadmitted: consume preadmitted, mode: mode
        )!
    }

    /// The record's visit and the request's consent signals, kept when they changed and "seen"
    /// at most once a day: no write per page view. A failure only delays it to the EC's next
    /// decision.
    func noteSeen(_ found: ECRecord, signals: ConsentStrings?, now: Timestamp) async {
        guard let signals, !found.withdrawn else { return }
        let snapshot = ConsentSnapshot(signals, seenAt: now)
        let changed = found.consentDigest != snapshot.digest
        guard changed || now - found.seenAt >= ECRecord.seenResolution else { return }
        metrics.roundTrip(.seen)
        do {
            try await graph.markSeen(ecHash: found.ecHash, at: now, consent: changed ? snapshot : nil)
        } catch {
            storeWarnings.write.warning(
                "recording an EC's visit and consent signals failed",
                metadata: ["error": "\(error)"],
                to: logger
            )
        }
    }

    /// Calls a known EC's combined step counted before the kernel decided from its record.
    struct Preadmitted {
        /// When the step had to pick among them (a per-request cap): every partner the request's
        /// consent allows, in the random order their calls are tried. `nil` when it didn't: the
        /// calls were offered in registry order, and the kernel orders them itself, as without
        /// the step.
        var shuffled: [RunningPartner]?
        /// What the step decided for each partner's call, by the partner's ordinal (`nil`: not
        /// tried); taken out as used, so that what is left admitted at the end was counted for a
        /// call never made.
        var admissions: [LeasedAdmission?]

        /// The partners of the calls the step counted and nobody took, among `enabled`.
        func counted(among enabled: [RunningPartner]) -> some Sequence<RunningPartner> {
            (shuffled ?? enabled).lazy.filter { self.admissions[$0.ordinal] == .admitted }
        }

        /// What the step decided for `partner`'s call, taken out; `nil` when it didn't try it.
        mutating func take(_ partner: RunningPartner) -> LeasedAdmission? {
            defer { admissions[partner.ordinal] = nil }
            return admissions[partner.ordinal]
        }

        /// Puts back what ``take(_:)`` took, for a call that won't be made after all.
        mutating func putBack(_ admission: LeasedAdmission, for partner: RunningPartner) {
            admissions[partner.ordinal] = admission
        }
    }

    /// What a known EC's combined step is offered (``CombinedStore``), with the order it was
    /// made in.
    struct DueCallsOffer {
        /// Every partner the request's consent allows, shuffled, when the step may have to pick
        /// among them; `nil` for the enabled partners' registry order.
        var shuffled: [RunningPartner]?
        /// The calls offered, in that order.
        var calls: [DueCall]
        /// How many of them the step may count.
        var cap: Int
        var lease: DueLease?

        /// The step's answers, kept by partner ordinal; a store that answers for other calls
        /// than asked is broken, and nothing it says is used.
        func preadmitted(
            by admissions: [LeasedAdmission?],
            enabled: [RunningPartner],
            partners: Int
        ) throws -> Preadmitted {
            guard admissions.count == calls.count else {
                throw StoreAnswerMismatch(asked: calls.count, got: admissions.count)
            }
            // Every registered partner offered, in registry order: the answers are by ordinal already.
            if shuffled == nil, calls.count == partners { return Preadmitted(shuffled: nil, admissions: admissions) }
            var byOrdinal = [LeasedAdmission?](repeating: nil, count: partners)
            let order = shuffled ?? enabled
            var next = 0
            for (call, admission) in zip(calls, admissions) {
                // The calls were offered in `order`'s order: each one's partner is further on in it.
                while order[next].id != call.request.key.partnerID { next += 1 }
                byOrdinal[order[next].ordinal] = admission
                next += 1
            }
            return Preadmitted(shuffled: shuffled, admissions: byOrdinal)
        }
    }

    /// The calls a known EC's record is read with, in one round trip (a store that keeps both,
    /// ``CombinedStore``): those of every partner the request's consent allows whose local
    /// checks would let them through now with room to spare (nothing is taken yet). The step
    /// counts at most the per-request cap of them, picked in a fresh random order when the cap
    /// may have to pick. The kernel then decides from the record as with a plain lookup, using
    /// what was counted, and takes back what it won't call. `nil` when there is no call to
    /// offer: the caller looks up alone.
    private func dueCallsOffer(
        _ request: OrganicRequest,
        _ edgeCookie: EdgeCookie,
        _ consent: any PartnerConsentRules,
        _ now: Timestamp
    ) -> DueCallsOffer? {
        guard let combined else { return nil }
        // The step counts the first due calls up to the cap: when it may have to pick, it picks
        // from a fresh random order of the partners consent allows (fair in expectation); else
        // the calls are offered in registry order (no array of them made) and the kernel orders
        // them afterwards, as without the step.
        let cap = configuration.maxCallsPerRequest ?? Int.max
        var shuffled: [RunningPartner]?
        if cap < enabled.count {
            var order = enabled.filter { Self.consentDenial(of: $0, consent, request) == nil }
            if cap < order.count {
                for position in stride(from: order.count - 1, to: 0, by: -1) {
                    order.swapAt(position, random.next(below: position + 1))
                }
                shuffled = order
            }
        }
        var calls: [DueCall] = []
        // Only calls whose partner has room to spare are offered: a partner near its in-flight
        // cap or budget, or probing a half-open circuit, may refuse the call once the step
        // counted it (others may take the last places meanwhile), and a count taken back is a
        // round trip, visible to other nodes until then. Those partners are counted as before.
        for partner in shuffled ?? enabled
        where (shuffled != nil || Self.consentDenial(of: partner, consent, request) == nil)
            && !inFlight.contains(partner.id, ecHash: edgeCookie.hashKey)
            && partner.protection.hasRoom(at: now, margin: Self.offerMargin)
        {
            let policy = partner.definition.policy
            if calls.isEmpty { calls.reserveCapacity(enabled.count) }
            calls.append(
                DueCall(
                    sourceDomain: partner.definition.sourceDomain,
                    ttl: policy.ttl,
                    timeout: policy.timeout,
                    request: RateLimitRequest(
                        key: RateLimitKey(partnerID: partner.id, ecHash: edgeCookie.hashKey),
                        policy: policy.rateLimit
                    )
                )
            )
        }
        guard !calls.isEmpty else { return nil }
        let lease = combined.sharesLeases ? DueLease(holder: leaseHolder, margin: configuration.leaseMargin) : nil
        return DueCallsOffer(shuffled: shuffled, calls: calls, cap: cap, lease: lease)
    }

    /// Free in-flight places and budget tokens a partner must have beyond a call's own for the
    /// call to be offered to the combined step.
    static let offerMargin = 3

    /// Why the request's consent refuses `partner`, if it does.
    static func consentDenial(
        of partner: RunningPartner,
        _ consent: any PartnerConsentRules,
        _ request: OrganicRequest
    ) -> ConsentDenial? {
        let requirements = partner.definition.policy.consent
        return consent.denial(for: requirements) ?? request.consent.policyDenial(of: requirements)
    }

    /// Takes back the calls a combined step counted that the plan doesn't make (callers check there are
    /// some first: an async call costs its frame even when it has nothing to do).
    private func uncount(_ left: Preadmitted, ecHash: ECHash, now: Timestamp) async {
        guard let combined else { return }
        let keys = left.counted(among: enabled).map { RateLimitKey(partnerID: $0.id, ecHash: ecHash) }
        metrics.roundTrip(.uncount)
        do {
            try await combined.uncount(keys, at: now, holder: combined.sharesLeases ? leaseHolder : nil)
        } catch {
            storeWarnings.release.warning(
                "taking back calls counted but not made failed; they count until their window ends",
                metadata: ["error": "\(error)"],
                to: logger
            )
        }
    }

    /// An issued EC's root entry, still to be created with the first batch's admission.
    private struct NewRoot {
        var snapshot: ConsentSnapshot?
    }

    private func warnLookupFailed(_ error: any Error) {
        storeWarnings.lookup.warning(
            "identity graph lookup failed; skipping pull sync",
            metadata: ["error": "\(error)"],
            to: logger
        )
    }

    /// The decisions for `record`. With `newRoot`, the record is an issued EC's, not stored yet:
    /// its root entry is created with the first batch's admission (``CombinedStore``). `nil`
    /// when that can't be done (nothing to admit, a revocation to make first, the entry already
    /// there, or the combined step failed): nothing was then taken, counted or stored, and the
    /// caller decides again after a lookup.
    private func planCalls<Mode: PlanningMode>(
        _ request: OrganicRequest,
        _ edgeCookie: EdgeCookie,
        _ record: ECRecord,
        _ consent: any PartnerConsentRules,
        _ now: Timestamp,
        newRoot: NewRoot?,
        preadmitted given: consuming Preadmitted? = nil,
        mode: Mode
    ) async -> RequestPlan? {
        // Owned here, so that taking the step's answers out copies nothing.
        var preadmitted = consume given
        // Built in place, one array for every decision (`explain` lists the disabled first).
        var decisions: [PartnerDecision] = []
        let disabled = mode.isExplaining ? registry.partners.count - enabled.count : 0
        decisions.reserveCapacity(enabled.count + disabled)
        if mode.isExplaining {
            for index in registry.partners.indices where !registry.isEnabled(index) {
                decisions.append(PartnerDecision(partnerID: registry.partners[index].id, decision: .skip(.disabled)))
            }
        }
        // Counted as decided, except a new root's: its attempt may be given up and decided again,
        // so its partners are counted once the plan stands.
        var uncounted: [RunningPartner] = []
        let countsLater = newRoot != nil
        func decide(_ partner: RunningPartner, _ decision: Decision) {
            decisions.append(PartnerDecision(partnerID: partner.id, decision: decision))
            if countsLater { uncounted.append(partner) } else { mode.count(decision, for: partner) }
        }
        // Partners still to be tried, by ordinal: no array of them (see OrdinalSet).
        var candidates = OrdinalSet(capacity: partners.count)
        // Until when nothing here can change, if every partner is fresh or refused by this
        // request's own signals (see FreshECMemo); `nil` once one isn't.
        var quietUntil: Timestamp? = now + FreshECMemo.longest
        // The fresh UIDs consent allows, for the memo to answer EIDs with.
        var kept: [FreshECMemo.KeptUID]? = freshMemo.keepsUIDs && !mode.isExplaining ? [] : nil
        // Partners the request's consent refuses that have a UID for the EC, or a call in flight
        // for it: revoked (their UID forgotten, the call's answer not stored).
        var revoking: [RunningPartner] = []
        for partner in enabled {
            let definition = partner.definition
            if let denial = Self.consentDenial(of: partner, consent, request) {
                decide(partner, .skip(denial.reason))
                if record.partners[definition.sourceDomain] != nil
                    || inFlight.contains(partner.id, ecHash: edgeCookie.hashKey)
                {
                    revoking.append(partner)
                }
                if denial.reason != .tcfConsent && denial.reason != .gppSection { quietUntil = nil }
            } else if let existing = record.partners[definition.sourceDomain],
                existing.isFresh(at: now, ttl: definition.policy.ttl)
            {
                decide(partner, .skip(.fresh))
                kept?.append(FreshECMemo.KeptUID(partner: partner.ordinal, uid: existing))
                quietUntil = quietUntil.map { min($0, existing.freshUntil(ttl: definition.policy.ttl)) }
            } else {
                candidates.insert(partner.ordinal)
            }
        }
        if newRoot != nil, candidates.isEmpty || !revoking.isEmpty { return nil }
        if !revoking.isEmpty { await mode.revoke(revoking, ecHash: record.ecHash, now: now, kernel: self) }
        // Every partner but the candidates holds until a known time: with no candidate the memo
        // holds now; else it will once each candidate is called and stores a UID (`execute`).
        var seed: FreshECMemo.Seed?
        if !mode.isExplaining, let until = quietUntil, let consent = FreshECMemo.consent(of: request) {
            if candidates.isEmpty {
                freshMemo.remember(ECKey(edgeCookie), consent: consent, until: until, uids: kept)
            } else {
                seed = FreshECMemo.Seed(consent: consent, until: until, uids: kept)
            }
        }
        let candidateCount = candidates.count

        // The order calls are tried in, drawn one candidate at a time: the combined step's,
        // which holds every partner consent allows, when it picked one; else a fresh random
        // order per request, which differs across ECs and over time, fair in expectation.
        let order = preadmitted?.shuffled
        var nextInOrder = 0
        func nextCandidate() -> RunningPartner? {
            while let order, nextInOrder < order.count {
                let partner = order[nextInOrder]
                nextInOrder += 1
                if candidates.remove(partner.ordinal) { return partner }
            }
            return candidates.removeRandom(using: random).map { partners[$0] }
        }

        var newRoot = newRoot
        var calls: [PlannedCall] = []
        let cap = configuration.maxCallsPerRequest ?? Int.max
        while calls.count < cap, !candidates.isEmpty {
            // Admit locally (circuit, budget, URL) up to the cap, then count them in one batch.
            var batch: [PlannedCall] = []
            batch.reserveCapacity(min(cap - calls.count, candidates.count))
            while calls.count + batch.count < cap, let partner = nextCandidate() {
                let definition = partner.definition
                let isProbe: Bool
                switch mode.admit(partner, ecHash: edgeCookie.hashKey, now: now, kernel: self) {
                case .admitted(let probe):
                    isProbe = probe
                case .refused(let reason):
                    decide(partner, .skip(reason))
                    continue
                }
                let context = PullContext(
                    edgeCookie: edgeCookie,
                    partnerID: definition.id,
                    sourceDomain: definition.sourceDomain,
                    now: now,
                    clientIP: configuration.forwardClientIP ? request.clientIP : nil,
                    consentStrings: request.consentStrings
                )
                let built: PullRequest
                do {
                    built = try definition.adapter.makeRequest(for: context)
                } catch {
                    logger.warning(
                        "adapter could not build a request",
                        metadata: ["partner": "\(definition.id)", "error": "\(error.message)"]
                    )
                    mode.release(partner, ecHash: edgeCookie.hashKey, probe: isProbe, kernel: self)
                    decide(partner, .skip(.adapterError))
                    continue
                }
                guard isAllowed(built.url, for: definition) else {
                    mode.release(partner, ecHash: edgeCookie.hashKey, probe: isProbe, kernel: self)
                    decide(partner, .skip(.badURL))
                    continue
                }
                batch.append(
                    PlannedCall(
                        partner: partner,
                        request: built,
                        context: context,
                        expected: record.partners[definition.sourceDomain],
                        isProbe: isProbe,
                        preadmission: preadmitted?.take(partner)
                    )
                )
            }
            if batch.isEmpty {
                if newRoot != nil { return nil }
                break
            }
            var admitted: BatchAdmissions
            do {
                if let root = newRoot {
                    newRoot = nil
                    guard let counted = try await createRoot(edgeCookie, root, admitting: batch, now: now) else {
                        // The entry was there already (a withdrawal got there first): decide
                        // again from it.
                        for call in batch { mode.release(call.partner, ecHash: edgeCookie.hashKey, probe: call.isProbe, kernel: self) }
                        return nil
                    }
                    admitted = BatchAdmissions(leased: counted)
                } else if preadmitted != nil, batch.allSatisfy({ $0.preadmission != nil }) {
                    // The usual case: the combined step tried every call of the batch.
                    admitted = .preadmitted
                } else if preadmitted != nil {
                    admitted = try await admitUsing(batch, putBackTo: &preadmitted!, ecHash: edgeCookie.hashKey, now: now, mode: mode)
                } else {
                    admitted = try await mode.admitRateLimits(
                        batch, leasing: batch, ecHash: edgeCookie.hashKey, now: now, kernel: self
                    )
                }
            } catch let error as NewRootFailed {
                // Nothing of it was stored. Decided again step by step: a failure of the counting
                // alone must not cost the EC its root entry.
                storeWarnings.rateLimiter.warning(
                    "creating a new EC's root entry with its first admissions failed; trying step by step",
                    metadata: ["error": "\(error.underlying)"],
                    to: logger
                )
                for call in batch { mode.release(call.partner, ecHash: edgeCookie.hashKey, probe: call.isProbe, kernel: self) }
                return nil
            } catch {
                storeWarnings.rateLimiter.warning(
                    "rate limiter failed; skipping pull sync",
                    metadata: ["error": "\(error)"],
                    to: logger
                )
                for call in batch {
                    mode.release(call.partner, ecHash: edgeCookie.hashKey, probe: call.isProbe, kernel: self)
                    decide(call.partner, .skip(.storeUnavailable))
                }
                // The partners not yet batched can't be admitted either: not deferred, unavailable.
                for ordinal in candidates { decide(partners[ordinal], .skip(.storeUnavailable)) }
                candidates.removeAll()
                break
            }
            // The admitted calls are moved to the front of the batch, in order; the first batch's
            // storage then becomes `calls` (no second array).
            var kept = 0
            for index in batch.indices {
                let call = batch[index]
                let admission = admitted.admission(at: index, of: batch)
                switch admission {
                case .admitted:
                    decide(call.partner, .dispatch)
                    batch.swapAt(kept, index)
                    kept += 1
                case .rateLimited, .leased:
                    mode.release(call.partner, ecHash: edgeCookie.hashKey, probe: call.isProbe, kernel: self)
                    decide(call.partner, .skip(admission == .leased ? .inFlight : .rateLimited))
                }
            }
            batch.removeLast(batch.count - kept)
            if calls.isEmpty { calls = batch } else { calls.append(contentsOf: batch) }
        }
        // The root entry is still to be created (a cap of no calls at all): step by step.
        if newRoot != nil { return nil }
        for ordinal in candidates { decide(partners[ordinal], .skip(.deferred)) }
        // Checked here: an async call costs its frame even when it has nothing to do.
        if let preadmitted, preadmitted.admissions.contains(.admitted) {
            await uncount(preadmitted, ecHash: edgeCookie.hashKey, now: now)
        }

        // The plan stands: a new root's decisions (the last ones made) are counted now.
        for (partner, decided) in zip(uncounted, decisions[(decisions.count - uncounted.count)...]) {
            mode.count(decided.decision, for: partner)
        }
        var plan = RequestPlan(edgeCookie: edgeCookie, decisions: decisions, calls: calls)
        plan.ecHash = record.ecHash
        plan.revoked = revoking.map(\.id)
        // Only when every candidate is called: one left for later could still be called.
        if let seed, calls.count == candidateCount { plan.memoSeed = seed }
        return plan
    }

    /// Creates an issued EC's root entry and counts `batch` in one round trip; `nil` when the
    /// entry was already there (nothing counted). A failure is a ``NewRootFailed``: nothing was
    /// stored, and the caller decides again step by step.
    private func createRoot(
        _ edgeCookie: EdgeCookie,
        _ root: NewRoot,
        admitting batch: [PlannedCall],
        now: Timestamp
    ) async throws(NewRootFailed) -> [LeasedAdmission]? {
        guard let combined else { return nil }
        let requests = rateLimitRequests(batch, ecHash: edgeCookie.hashKey)
        do {
            metrics.roundTrip(.createRootAdmit)
            let (_, admissions) = try await combined.createRoot(
                for: edgeCookie,
                at: now,
                consent: root.snapshot,
                admitting: requests,
                lease: combined.sharesLeases ? lease(for: batch, now: now) : nil
            )
            guard let admissions else { return nil }
            guard admissions.count == requests.count else {
                throw StoreAnswerMismatch(asked: requests.count, got: admissions.count)
            }
            return admissions
        } catch {
            throw NewRootFailed(underlying: error)
        }
    }

    /// A batch's admissions when the combined step tried only some of its calls: what it counted
    /// (taken into the calls as they were batched), and the calls it didn't try (their partner's
    /// local checks changed since, or they came after its cap) counted now. If that fails, what
    /// the step counted for the batch goes back into `preadmitted`, to be taken back.
    private func admitUsing<Mode: PlanningMode>(
        _ batch: [PlannedCall],
        putBackTo preadmitted: inout Preadmitted,
        ecHash: ECHash,
        now: Timestamp,
        mode: Mode
    ) async throws -> BatchAdmissions {
        let missing = batch.indices.filter { batch[$0].preadmission == nil }
        let missingCalls = missing.map { batch[$0] }
        let counted: BatchAdmissions
        do {
            // Leased, as the batch would be without the step, for its longest call.
            counted = try await mode.admitRateLimits(
                missingCalls, leasing: batch, ecHash: ecHash, now: now, kernel: self
            )
        } catch {
            // The batch won't be called: what the step counted for it is taken back.
            for call in batch {
                if let admission = call.preadmission { preadmitted.putBack(admission, for: call.partner) }
            }
            throw error
        }
        var admissions = batch.map(\.preadmission)
        for (position, index) in missing.enumerated() {
            admissions[index] = counted.admission(at: position, of: missingCalls)
        }
        return BatchAdmissions(leased: admissions.map { $0! })
    }

    /// The rate-limit checks of a batch of calls for one EC.
    func rateLimitRequests(_ batch: [PlannedCall], ecHash: ECHash) -> [RateLimitRequest] {
        batch.map { call in
            RateLimitRequest(
                key: RateLimitKey(partnerID: call.partnerID, ecHash: ecHash),
                policy: call.partner.definition.policy.rateLimit
            )
        }
    }

    /// The lease a batch of calls takes in a shared store: long enough for the slowest call of
    /// the batch and its write; a node that dies mid-call holds the pairs no longer than this.
    func lease(for batch: [PlannedCall], now: Timestamp) -> CallLease {
        let longest = batch.map(\.partner.definition.policy.timeout).max() ?? .zero
        return CallLease(holder: leaseHolder, expiresAt: now + longest + configuration.leaseMargin)
    }

    private func skipAll<Mode: PlanningMode>(_ reason: SkipReason, edgeCookie: EdgeCookie?, mode: Mode) -> RequestPlan {
        mode.countRequestSkip(reason, kernel: self)
        let decisions =
            mode.isExplaining
            ? registry.partners.indices.map { index in
                PartnerDecision(
                    partnerID: registry.partners[index].id,
                    decision: registry.isEnabled(index) ? .skip(reason) : .skip(.disabled)
                )
            } : []
        return RequestPlan(edgeCookie: edgeCookie, decisions: decisions, calls: [], requestSkip: reason)
    }
}

/// Creating an issued EC's root entry with its first admissions failed.
struct NewRootFailed: Error {
    var underlying: any Error
}

/// A batch's admissions as the limiter answered them: a plain limiter's `[Bool]`, or the
/// combined step's answers kept in the calls themselves, are read where they are, not mapped
/// into a second array.
struct BatchAdmissions {
    private enum Answers {
        case counted([Bool])
        case leased([LeasedAdmission])
        /// In each call's ``PlannedCall/preadmission``.
        case preadmitted
    }

    private let answers: Answers

    /// A limiter without leases: `true` is admitted, `false` rate-limited.
    init(counted: [Bool]) { answers = .counted(counted) }

    init(leased: [LeasedAdmission]) { answers = .leased(leased) }

    private init(_ answers: Answers) { self.answers = answers }

    /// Each call of the batch holds what the combined step counted for it.
    static let preadmitted = BatchAdmissions(.preadmitted)

    /// How many answers the limiter gave (none when they are kept in the calls).
    var count: Int {
        switch answers {
        case .counted(let counted): counted.count
        case .leased(let leased): leased.count
        case .preadmitted: 0
        }
    }

    /// The admission of `batch`'s call at `index`.
    func admission(at index: Int, of batch: [PlannedCall]) -> LeasedAdmission {
        switch answers {
        case .counted(let counted): counted[index] ? .admitted : .rateLimited
        case .leased(let leased): leased[index]
        case .preadmitted: batch[index].preadmission ?? .rateLimited
        }
    }
}
