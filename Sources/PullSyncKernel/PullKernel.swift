public import CoreMetrics
public import Logging

/// One partner call, decided and built, waiting to be sent.
public struct PlannedCall: Sendable {
    /// The partner's index in the registry.
    public var partnerIndex: Int
    public var partnerID: String
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

/// The pull-sync kernel: decides, for one organic request, which partners to call, calls
/// them with bounded fan-out, classifies the answers and writes UIDs to the identity graph.
///
/// It holds no sockets and reads no files: the transport, identity graph, rate limiter,
/// clock and randomness are injected.
public struct PullKernel: Sendable {
    /// The partners it decides for (another one after ``reloaded(with:)``).
    public private(set) var registry: PartnerRegistry
    public let configuration: PullSyncConfiguration
    let graph: any IdentityGraph
    let rateLimiter: any RateLimiter
    let transport: any PullTransport
    let clock: any WallClock
    let random: any RandomSource
    private(set) var partnerGuard: PartnerGuard
    let inFlight = InFlightCalls()
    private(set) var metrics: KernelMetrics
    private let metricsFactory: any MetricsFactory
    let logger: Logger
    /// This kernel's name on the leases it takes in a shared store.
    let leaseHolder: String
    private let storeWarnings = StoreWarnings()

    public init(
        registry: PartnerRegistry,
        configuration: PullSyncConfiguration = PullSyncConfiguration(),
        graph: any IdentityGraph,
        rateLimiter: any RateLimiter,
        transport: any PullTransport,
        clock: any WallClock = SystemWallClock(),
        random: any RandomSource = SystemRandomSource(),
        metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance,
        logger: Logger = Logger(label: "pullsync", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.registry = registry
        self.configuration = configuration
        self.graph = graph
        self.rateLimiter = rateLimiter
        self.transport = transport
        self.clock = clock
        self.random = random
        self.partnerGuard = PartnerGuard(
            budgets: registry.partners.map(\.budgetPerSecond),
            policy: configuration.circuitBreaker,
            maxInFlightPerPartner: configuration.effectiveMaxInFlightPerPartner
        )
        self.metrics = KernelMetrics(partnerIDs: registry.partners.map(\.id), factory: metricsFactory)
        self.metricsFactory = metricsFactory
        self.logger = logger
        // Not from `random`: that one is the fair order's, and tests replay it from a seed.
        var generator = SystemRandomNumberGenerator()
        self.leaseHolder = String(generator.next(), radix: 16)
    }

    /// This kernel with `registry` in its place, for a hot reload of the partners. Everything
    /// else is shared: stores, transport, clock, randomness, the lease holder name, and the
    /// (partner, EC) pairs in flight (by partner id), so a call still in flight on this kernel
    /// keeps a new one from making the same call. A partner that stays (same id) keeps its
    /// circuit, pause and, if its budget is unchanged, its budget state (see
    /// ``PartnerGuard/reloaded(from:to:budgets:)``); a new partner starts fresh. Calls in flight
    /// finish on the kernel that planned them, against the partner as it was.
    public func reloaded(with registry: PartnerRegistry) -> PullKernel {
        var kernel = self
        kernel.partnerGuard = partnerGuard.reloaded(
            from: self.registry.partners.map(\.id),
            to: registry.partners.map(\.id),
            budgets: registry.partners.map(\.budgetPerSecond)
        )
        kernel.metrics = KernelMetrics(partnerIDs: registry.partners.map(\.id), factory: metricsFactory)
        kernel.registry = registry
        return kernel
    }

    // MARK: Deciding

    /// The checks that need no store: route, EC format, and request-level consent (the host's
    /// decision, GPC, US opt-outs, consent strings that don't decode). Cheap enough to run on
    /// the request path before anything is queued.
    public func gate(_ request: OrganicRequest) -> GateResult {
        admission(request).result
    }

    /// The gate's result, and the EC to withdraw when the request affirmatively denies consent
    /// (the host's decision, GPC, an opt-out) and carries a well-formed EC.
    package func admission(_ request: OrganicRequest) -> (result: GateResult, withdrawing: EdgeCookie?) {
        guard configuration.routes.isOrganic(request.path) else { return (.skip(.route), nil) }
        guard let raw = request.edgeCookie, let edgeCookie = configuration.edgeCookieFormat.parse(raw) else {
            return (.skip(.invalidEC), nil)
        }
        if let denial = ConsentSignals(request.consentStrings).requestDenial(host: request.consent) {
            return (.skip(denial.reason), denial.withdraws ? edgeCookie : nil)
        }
        return (.pass(edgeCookie), nil)
    }

    /// Decides every partner for `request` without sending, counting or writing anything:
    /// what `pullsync explain` prints. Disabled partners are included.
    public func explain(_ request: OrganicRequest) async -> RequestPlan {
        await plan(request, committing: false)
    }

    /// Decides `request` for real: creates the root entry of an EC issued on this request,
    /// takes budget tokens and in-flight places, and counts the calls it plans in the rate
    /// limiter. What it takes is given back only by executing the plan, so it is not public:
    /// use ``process(_:)`` or a ``PullDispatcher``.
    ///
    /// - Parameter gated: the EC from a ``gate(_:)`` already passed (the dispatcher gates at
    ///   submission), so the checks are not run twice.
    package func plan(_ request: OrganicRequest, gated: EdgeCookie? = nil) async -> RequestPlan {
        await plan(request, committing: true, gated: gated)
    }

    private func plan(_ request: OrganicRequest, committing: Bool, gated: EdgeCookie? = nil) async -> RequestPlan {
        let edgeCookie: EdgeCookie
        switch gated.map(GateResult.pass) ?? gate(request) {
        case .skip(let reason):
            return skipAll(reason, edgeCookie: nil, committing: committing)
        case .pass(let value):
            edgeCookie = value
        }
        // The TC string is decoded once per request, before any store work: a malformed one
        // stops every partner.
        let consent = PartnerConsent(
            signals: ConsentSignals(request.consentStrings),
            hostPolicy: request.consent.partnerPolicy
        )
        if let denial = consent.requestDenial {
            return skipAll(denial.reason, edgeCookie: edgeCookie, committing: committing)
        }
        let now = clock.now()

        let record: ECRecord?
        do {
            record = try await lookUp(
                edgeCookie,
                issued: request.ecIssuedOnThisRequest,
                now: now,
                committing: committing
            )
        } catch {
            storeWarnings.lookup.warning(
                "identity graph lookup failed; skipping pull sync",
                metadata: ["error": "\(error)"],
                to: logger
            )
            return skipAll(.storeUnavailable, edgeCookie: edgeCookie, committing: committing)
        }
        guard let record else { return skipAll(.unknownEC, edgeCookie: edgeCookie, committing: committing) }
        if record.withdrawn { return skipAll(.consent, edgeCookie: edgeCookie, committing: committing) }

        var decisions: [PartnerDecision] = []
        var candidates: [Int] = []
        if !committing {
            for index in registry.partners.indices where !registry.isEnabled(index) {
                decisions.append(PartnerDecision(partnerID: registry.partners[index].id, decision: .skip(.disabled)))
            }
        }
        for index in registry.enabledIndices {
            let partner = registry.partners[index]
            if let denial = consent.denial(for: partner.consent) {
                decide(index, .skip(denial.reason), into: &decisions, committing: committing)
            } else if let existing = record.partners[partner.sourceDomain], existing.isFresh(at: now, ttl: partner.ttl)
            {
                decide(index, .skip(.fresh), into: &decisions, committing: committing)
            } else {
                candidates.append(index)
            }
        }

        // A fresh random order per request: differs across ECs and over time, fair in expectation.
        for position in stride(from: candidates.count - 1, to: 0, by: -1) {
            candidates.swapAt(position, random.next(below: position + 1))
        }

        var calls: [PlannedCall] = []
        var remaining = candidates[...]
        let cap = configuration.maxCallsPerRequest ?? Int.max
        while calls.count < cap, !remaining.isEmpty {
            // Admit locally (circuit, budget, URL) up to the cap, then count them in one batch.
            var batch: [PlannedCall] = []
            while calls.count + batch.count < cap, let index = remaining.popFirst() {
                let partner = registry.partners[index]
                var isProbe = false
                if committing {
                    // One call per partner and EC at a time: a page view arriving while the
                    // previous one's call is out must not ask the partner again.
                    guard inFlight.begin(partner.id, ecHash: edgeCookie.hash) else {
                        decide(index, .skip(.inFlight), into: &decisions, committing: committing)
                        continue
                    }
                    switch partnerGuard.admission(index, at: now) {
                    case .admitted(let probe):
                        isProbe = probe
                    case .refused(let reason):
                        inFlight.end(partner.id, ecHash: edgeCookie.hash)
                        decide(index, .skip(reason), into: &decisions, committing: committing)
                        continue
                    }
                } else if inFlight.contains(partner.id, ecHash: edgeCookie.hash) {
                    decide(index, .skip(.inFlight), into: &decisions, committing: committing)
                    continue
                } else if let reason = partnerGuard.peek(index, at: now) {
                    decide(index, .skip(reason), into: &decisions, committing: committing)
                    continue
                }
                let context = PullContext(
                    edgeCookie: edgeCookie,
                    partnerID: partner.id,
                    sourceDomain: partner.sourceDomain,
                    now: now,
                    clientIP: configuration.forwardClientIP ? request.clientIP : nil,
                    consentStrings: request.consentStrings
                )
                let built: PullRequest
                do {
                    built = try partner.adapter.makeRequest(for: context)
                } catch {
                    logger.warning(
                        "adapter could not build a request",
                        metadata: ["partner": "\(partner.id)", "error": "\(error.message)"]
                    )
                    if committing { release(index, ecHash: edgeCookie.hash, probe: isProbe) }
                    decide(index, .skip(.adapterError), into: &decisions, committing: committing)
                    continue
                }
                guard isAllowed(built.url, for: partner) else {
                    if committing { release(index, ecHash: edgeCookie.hash, probe: isProbe) }
                    decide(index, .skip(.badURL), into: &decisions, committing: committing)
                    continue
                }
                batch.append(
                    PlannedCall(
                        partnerIndex: index,
                        partnerID: partner.id,
                        request: built,
                        context: context,
                        expected: record.partners[partner.sourceDomain],
                        isProbe: isProbe
                    )
                )
            }
            if batch.isEmpty { break }
            let admitted: [LeasedAdmission]
            do {
                admitted = try await admitRateLimits(batch, ecHash: edgeCookie.hash, now: now, committing: committing)
            } catch {
                storeWarnings.rateLimiter.warning(
                    "rate limiter failed; skipping pull sync",
                    metadata: ["error": "\(error)"],
                    to: logger
                )
                for call in batch {
                    if committing { release(call.partnerIndex, ecHash: edgeCookie.hash, probe: call.isProbe) }
                    decide(call.partnerIndex, .skip(.storeUnavailable), into: &decisions, committing: committing)
                }
                // The partners not yet batched can't be admitted either: not deferred, unavailable.
                for index in remaining {
                    decide(index, .skip(.storeUnavailable), into: &decisions, committing: committing)
                }
                remaining = []
                break
            }
            for (call, admission) in zip(batch, admitted) {
                switch admission {
                case .admitted:
                    decide(call.partnerIndex, .dispatch, into: &decisions, committing: committing)
                    calls.append(call)
                case .rateLimited, .leased:
                    if committing { release(call.partnerIndex, ecHash: edgeCookie.hash, probe: call.isProbe) }
                    let reason: SkipReason = admission == .leased ? .inFlight : .rateLimited
                    decide(call.partnerIndex, .skip(reason), into: &decisions, committing: committing)
                }
            }
        }
        for index in remaining {
            decide(index, .skip(.deferred), into: &decisions, committing: committing)
        }
        return RequestPlan(edgeCookie: edgeCookie, decisions: decisions, calls: calls)
    }

    private func lookUp(
        _ edgeCookie: EdgeCookie,
        issued: Bool,
        now: Timestamp,
        committing: Bool
    ) async throws
        -> ECRecord?
    {
        if let record = try await graph.record(ecHash: edgeCookie.hashString) { return record }
        guard issued else { return nil }
        if committing { return try await graph.createRoot(for: edgeCookie, at: now) }
        return ECRecord(ecHash: edgeCookie.hashString, ecID: edgeCookie.value, createdAt: now)
    }

    private func admitRateLimits(
        _ batch: [PlannedCall],
        ecHash: Substring,
        now: Timestamp,
        committing: Bool
    )
        async throws -> [LeasedAdmission]
    {
        let requests = batch.map { call in
            RateLimitRequest(
                key: RateLimitRequest.pullKey(partnerID: call.partnerID, ecHash: ecHash),
                policy: registry.partners[call.partnerIndex].rateLimit
            )
        }
        if committing {
            let admitted: [LeasedAdmission]
            if rateLimiter.sharesLeases {
                // Long enough for the slowest call of the batch and its write; a node that dies
                // mid-call holds the pair no longer than this.
                let longest = batch.map { registry.partners[$0.partnerIndex].timeout }.max() ?? .zero
                let lease = CallLease(holder: leaseHolder, expiresAt: now + longest + configuration.leaseMargin)
                admitted = try await rateLimiter.admit(requests, lease: lease, at: now)
            } else {
                admitted = try await rateLimiter.acquire(requests, at: now).map { $0 ? .admitted : .rateLimited }
            }
            // A store that answers for fewer calls than asked is broken: count nothing as admitted.
            guard admitted.count == requests.count else {
                throw StoreAnswerMismatch(asked: requests.count, got: admitted.count)
            }
            return admitted
        }
        var admitted: [LeasedAdmission] = []
        for request in requests {
            let used = try await rateLimiter.count(key: request.key, window: request.policy.window, at: now)
            admitted.append(used < request.policy.calls ? .admitted : .rateLimited)
        }
        return admitted
    }

    private func skipAll(_ reason: SkipReason, edgeCookie: EdgeCookie?, committing: Bool) -> RequestPlan {
        // A request-level skip is counted once per request, not once per partner.
        if committing { metrics.requestSkip(reason) }
        let decisions =
            committing
            ? []
            : registry.partners.indices.map { index in
                PartnerDecision(
                    partnerID: registry.partners[index].id,
                    decision: registry.isEnabled(index) ? .skip(reason) : .skip(.disabled)
                )
            }
        return RequestPlan(edgeCookie: edgeCookie, decisions: decisions, calls: [], requestSkip: reason)
    }

    private func decide(_ index: Int, _ decision: Decision, into decisions: inout [PartnerDecision], committing: Bool) {
        decisions.append(PartnerDecision(partnerID: registry.partners[index].id, decision: decision))
        if committing { metrics.decision(index, decision) }
    }

    /// Gives back everything a committed plan took for calls that will never be sent (for
    /// benchmarks and tests that inspect plans without executing them). Rate-limit counts stay.
    package func abandon(_ plan: RequestPlan) {
        guard let edgeCookie = plan.edgeCookie else { return }
        for call in plan.calls { release(call.partnerIndex, ecHash: edgeCookie.hash, probe: call.isProbe) }
    }

    /// Gives back what planning took for a call that won't be sent.
    private func release(_ index: Int, ecHash: Substring, probe: Bool) {
        partnerGuard.refund(index, probe: probe)
        inFlight.end(registry.partners[index].id, ecHash: ecHash)
    }

    /// Whether `url` may be sent to for `partner`: on its allow-list, and `https`, unless the
    /// host is loopback and the development switch allows it.
    public func isAllowed(_ url: PartnerURL, for partner: Partner) -> Bool {
        guard partner.allowedHosts.contains(url.host) else { return false }
        if HostName.isLoopback(url.host) {
            return configuration.allowLoopback && (url.scheme == "https" || url.scheme == "http")
        }
        return url.scheme == "https"
    }

    /// Each partner's protection state now (circuit and pause), in registry order: what health shows.
    public func protectionStates() -> [(partnerID: String, state: PartnerGuardState)] {
        let now = clock.now()
        return registry.partners.indices.map { (registry.partners[$0].id, partnerGuard.state($0, at: now)) }
    }

    // MARK: Withdrawal

    /// Withdraws `edgeCookie`'s consent: marks it withdrawn in the identity graph and forgets its
    /// UIDs. Calls in flight for it store nothing (the graph refuses their writes), and later
    /// requests with it call no one, even if consent is given again. Returns whether the EC was
    /// known. What the admin API's `DELETE /_pullsync/ids/{ec_id}` does.
    public func withdraw(_ edgeCookie: EdgeCookie) async throws -> Bool {
        do {
            let known = try await graph.withdraw(ecHash: edgeCookie.hashString, at: clock.now())
            metrics.withdrawal(known ? "withdrawn" : "unknown_ec")
            return known
        } catch {
            metrics.withdrawal("error")
            throw error
        }
    }

    /// Withdraws the EC of a request that denied consent (the dispatcher calls it off the
    /// request path). An EC already withdrawn costs one read; an unknown one is left alone (a
    /// spoofed EC must not create entries), unless this node issued it moments ago: then its
    /// root entry may not be written yet, so it is created withdrawn, and the pull its first
    /// page view queued stores nothing. Returns the metric's result name.
    package func withdrawDenied(_ edgeCookie: EdgeCookie, issuedHere: Bool) async -> String {
        let hash = edgeCookie.hashString
        let result: String
        do {
            let record = try await graph.record(ecHash: hash)
            if record?.withdrawn == true {
                result = "already_withdrawn"
            } else if record == nil && !issuedHere {
                result = "unknown_ec"
            } else {
                if record == nil { _ = try await graph.createRoot(for: edgeCookie, at: clock.now()) }
                try await graph.withdraw(ecHash: hash, at: clock.now())
                result = "withdrawn"
                logger.debug("consent withdrawn for an EC")
            }
        } catch {
            logger.warning("identity graph failed to withdraw an EC", metadata: ["error": "\(error)"])
            result = "error"
        }
        metrics.withdrawal(result)
        return result
    }

    // MARK: Calling

    /// Plans `request` and makes its calls (sliding window, no queue), returning everything
    /// that happened. The dispatcher does the same behind its queue.
    public func process(_ request: OrganicRequest) async -> RequestReport {
        let plan = await plan(request)
        let results = await execute(plan, globalSlots: nil, shouldStartMore: { true })
        return RequestReport(plan: plan, results: results)
    }

    /// Makes a plan's calls with at most `perRequestConcurrency` in flight: when one ends,
    /// the next starts, so one slow partner never holds the others back.
    func execute(
        _ plan: RequestPlan,
        globalSlots: AsyncSemaphore?,
        shouldStartMore: @escaping @Sendable () -> Bool
    ) async -> [CallResult] {
        guard let edgeCookie = plan.edgeCookie, !plan.calls.isEmpty else { return [] }
        let ecHash = edgeCookie.hashString
        let writer = makeWriter(ecHash: ecHash)
        let results = await withTaskGroup(of: CallResult?.self) { group in
            var pending = plan.calls[...]
            var results: [CallResult] = []
            results.reserveCapacity(plan.calls.count)
            func startNext() -> Bool {
                guard shouldStartMore(), let call = pending.popFirst() else { return false }
                group.addTask {
                    if let globalSlots {
                        do {
                            try await globalSlots.acquire()
                        } catch {
                            self.release(call.partnerIndex, ecHash: ecHash[...], probe: call.isProbe)
                            return nil
                        }
                        // Shutdown may have begun while this call waited for a slot: it was
                        // never sent, so it is not sent now either.
                        guard shouldStartMore() else {
                            globalSlots.release()
                            self.release(call.partnerIndex, ecHash: ecHash[...], probe: call.isProbe)
                            return nil
                        }
                    }
                    defer { globalSlots?.release() }
                    guard await self.mayStartSending(call) else {
                        self.release(call.partnerIndex, ecHash: ecHash[...], probe: call.isProbe)
                        return nil
                    }
                    return await self.call(call, ecHash: ecHash, writer: writer)
                }
                return true
            }
            var running = 0
            while running < configuration.perRequestConcurrency, startNext() { running += 1 }
            for await result in group {
                if let result { results.append(result) }
                _ = startNext()
            }
            // Calls never started (shutdown) give their counted slot back to nobody: the rate
            // limit stays conservative, and the budget is refunded.
            for call in pending { release(call.partnerIndex, ecHash: ecHash[...], probe: call.isProbe) }
            return results
        }
        if rateLimiter.sharesLeases {
            // Every call of the request has ended: its leases go back in one round trip. (A
            // fast partner's lease outlives its call by the slow partners' time; its UID is
            // fresh by then, so nobody else would call it anyway.)
            let keys = plan.calls.map { RateLimitRequest.pullKey(partnerID: $0.partnerID, ecHash: ecHash) }
            do {
                try await rateLimiter.releaseLeases(keys, holder: leaseHolder)
            } catch {
                storeWarnings.release.warning(
                    "releasing call leases failed; they lapse on their own",
                    metadata: ["error": "\(error)"],
                    to: logger
                )
            }
        }
        return results
    }

    /// The budget checked again when the call is about to go, against the times calls were
    /// really sent: planning takes a token, but calls wait for slots and connections after it,
    /// and a budget measured at planning lets them bunch up at the partner. A partner with a
    /// budget gets at most `budget` calls in any second of send time from this process, and,
    /// with a store that shares budgets, from all nodes together. A call refused here is not
    /// sent; it counts as a `budget` decision too.
    func mayStartSending(_ call: PlannedCall) async -> Bool {
        guard let perSecond = registry.partners[call.partnerIndex].budgetPerSecond else { return true }
        let refuse = {
            self.metrics.decision(call.partnerIndex, .skip(.budget))
            return false
        }
        guard partnerGuard.takeSendSlot(call.partnerIndex, at: clock.now()) else { return refuse() }
        guard rateLimiter.sharesBudgets else { return true }
        do {
            let budget = SharedBudget(partnerID: call.partnerID, perSecond: perSecond)
            return try await rateLimiter.takeBudget(budget, at: clock.now()) ? true : refuse()
        } catch {
            // Without the shared count the budget can't be kept: don't send.
            storeWarnings.rateLimiter.warning(
                "shared budget check failed; not sending",
                metadata: ["error": "\(error)"],
                to: logger
            )
            return refuse()
        }
    }

    /// Sends one planned call, classifies it and writes a UID.
    func call(_ call: PlannedCall, ecHash: String) async -> CallResult {
        await self.call(call, ecHash: ecHash, writer: makeWriter(ecHash: ecHash))
    }

    /// One request's UID writes go through one batcher.
    private func makeWriter(ecHash: String) -> WriteBatcher {
        WriteBatcher(graph: graph, ecHash: ecHash) { [storeWarnings, logger] error in
            storeWarnings.write.warning("identity graph write failed", metadata: ["error": "\(error)"], to: logger)
        }
    }

    func call(_ call: PlannedCall, ecHash: String, writer: WriteBatcher) async -> CallResult {
        let partner = registry.partners[call.partnerIndex]
        let started = ContinuousClock.now
        metrics.inFlight.increment()
        let (status, outcome, retryAfter) = await send(call.request, context: call.context, partner: partner)
        metrics.inFlight.decrement()
        let duration = ContinuousClock.now - started
        let now = clock.now()
        // Our own refusals and calls cut short by shutdown say nothing about the partner's health.
        let cancelled = Task.isCancelled
        if let retryAfter, !cancelled {
            let until = partnerGuard.pause(call.partnerIndex, for: retryAfter, probe: call.isProbe, at: now)
            metrics.pause(call.partnerIndex)
            logger.warning(
                "partner asked for a pause; no calls to it until it ends",
                metadata: [
                    "partner": "\(partner.id)", "status": "\(status ?? 0)",
                    "pause_s": "\((until - now).nanoseconds / 1_000_000_000)",
                ]
            )
        } else if outcome != .refusedTarget && !cancelled {
            let change = partnerGuard.record(
                call.partnerIndex,
                failed: outcome.isPartnerFailure,
                probe: call.isProbe,
                at: now
            )
            if let change { log(change, partner: partner) }
        } else {
            partnerGuard.refund(call.partnerIndex, probe: call.isProbe)
        }
        defer { inFlight.end(call.partnerID, ecHash: ecHash[...]) }
        // A call cut short by shutdown is not the partner's answer: it is logged, not counted
        // (unless the answer made it in before the cut).
        if !cancelled || outcome.outcomeClass == .uid {
            metrics.outcome(call.partnerIndex, outcome.outcomeClass)
            metrics.durations[call.partnerIndex].recordNanoseconds(duration.nanoseconds)
        }

        var write: WriteResult?
        if case .uid(let uid, let expiresAt) = outcome {
            let value = PartnerUID(uid: uid, syncedAt: now, expiresAt: expiresAt)
            write = await writer.write(
                UIDWrite(sourceDomain: partner.sourceDomain, value: value, expected: call.expected)
            )
            metrics.write(call.partnerIndex, write)
        }
        log(outcome, write: write, partner: partner, duration: duration, cancelled: cancelled)
        return CallResult(partnerID: partner.id, outcome: outcome, write: write, duration: duration, status: status)
    }

    /// Checks the URL again right before sending, sends, and classifies. The third value is the
    /// pause a `429` or `503` asked for with a usable `Retry-After` (the adapter classifies the
    /// answer as usual; the pause is the kernel's, whatever the adapter).
    private func send(
        _ request: PullRequest,
        context: PullContext,
        partner: Partner
    ) async -> (Int?, PullOutcome, Duration?) {
        guard isAllowed(request.url, for: partner) else { return (nil, .refusedTarget, nil) }
        let limits = TransportLimits(timeout: partner.timeout, maxBodyBytes: configuration.maxBodyBytes)
        let result = await transport.send(request, limits: limits)
        var status: Int?
        var retryAfter: Duration?
        if case .response(let code, let headers, _) = result {
            status = code
            if code == 429 || code == 503 { retryAfter = RetryAfter.delay(in: headers, now: clock.now()) }
        }
        // `Retry-After: 0` asks for no pause: the answer is then an ordinary failure.
        if retryAfter == .zero { retryAfter = nil }
        return (status, partner.adapter.classify(result, context: context), retryAfter)
    }

    private func log(_ change: CircuitChange, partner: Partner) {
        let metadata: Logger.Metadata = ["partner": "\(partner.id)"]
        switch change {
        case .openedByConsecutiveFailures(let count):
            logger.warning("circuit opened after \(count) consecutive failures", metadata: metadata)
        case .openedByErrorRate(let failures, let calls):
            logger.warning("circuit opened: \(failures) of the last \(calls) calls failed", metadata: metadata)
        case .reopened:
            logger.warning("circuit probe failed; circuit open again", metadata: metadata)
        case .closed:
            logger.info("circuit closed: the partner answered", metadata: metadata)
        }
    }

    /// Sends one partner's real pull request for `edgeCookie` once, ignoring eligibility, rate
    /// limits, budget and circuit, and writing nothing: what `pullsync try` does. The URL
    /// safety checks still apply. `nil` when no partner has that id; an adapter that can't
    /// build a request throws. `consentStrings` are passed to the adapter as an organic
    /// request's would be (partner fixtures use them).
    public func probe(
        partnerID: String,
        edgeCookie: EdgeCookie,
        consentStrings: ConsentStrings = ConsentStrings()
    ) async throws(AdapterError) -> ProbeResult? {
        guard let index = registry.index(of: partnerID) else { return nil }
        let partner = registry.partners[index]
        let context = PullContext(
            edgeCookie: edgeCookie,
            partnerID: partner.id,
            sourceDomain: partner.sourceDomain,
            now: clock.now(),
            consentStrings: consentStrings
        )
        let request = try partner.adapter.makeRequest(for: context)
        let started = ContinuousClock.now
        let (status, outcome, _) = await send(request, context: context, partner: partner)
        let duration = ContinuousClock.now - started
        metrics.outcome(index, outcome.outcomeClass)
        return ProbeResult(
            partnerID: partner.id,
            request: request,
            status: status,
            outcome: outcome,
            duration: duration
        )
    }

    private func log(
        _ outcome: PullOutcome,
        write: WriteResult?,
        partner: Partner,
        duration: Duration,
        cancelled: Bool
    ) {
        var metadata: Logger.Metadata = [
            "partner": "\(partner.id)",
            "outcome": "\(outcome.className)",
            "duration_ms": "\(duration.nanoseconds / 1_000_000)",
        ]
        if case .httpError(let status) = outcome { metadata["status"] = "\(status)" }
        if let write { metadata["write"] = "\(write.rawValue)" }
        if cancelled {
            logger.debug("pull call cut short by shutdown", metadata: metadata)
        } else if outcome.isPartnerFailure || outcome == .refusedTarget {
            logger.warning("pull call failed", metadata: metadata)
        } else {
            logger.debug("pull call finished", metadata: metadata)
        }
    }
}

/// One throttle per kind of store failure, so each kind still shows up in the log.
private struct StoreWarnings: Sendable {
    let lookup = ThrottledWarning()
    let rateLimiter = ThrottledWarning()
    let write = ThrottledWarning()
    let release = ThrottledWarning()
}

/// A store answered a batch with the wrong number of results.
struct StoreAnswerMismatch: Error, CustomStringConvertible {
    var asked: Int
    var got: Int
    var description: String { "store answered \(got) results for \(asked) requests" }
}
