public import CoreMetrics
public import Logging

/// The pull-sync kernel: decides, for one organic request, which partners to call, calls
/// them with bounded fan-out, classifies the answers and writes UIDs to the identity graph.
///
/// It holds no sockets and reads no files: the transport, identity graph, rate limiter,
/// consent rules, clock and randomness are injected. It owns each partner's state in this process (circuit,
/// budget, pause, the calls in flight), which a reload carries over to the kernel that
/// ``reloaded(with:)`` returns.
public final class PullKernel: Sendable {
    /// The partners it decides for (another kernel after ``reloaded(with:)``).
    public let registry: PartnerRegistry
    /// The settings it decides and fans out with.
    public let configuration: PullSyncConfiguration
    let graph: any IdentityGraph
    let rateLimiter: any RateLimiter
    /// The graph, when it is also the rate limiter and can combine their steps (see
    /// ``CombinedStore``): a new EC's root entry and first admissions then take one round trip,
    /// and a UID write gives its call's lease back.
    let combined: (any CombinedStore)?
    let transport: any PullTransport
    /// The consent rules it applies.
    package let consent: any ConsentRules
    let clock: any WallClock
    let random: any RandomSource
    /// Every partner, in registry order, and the enabled ones.
    let partners: [RunningPartner]
    let enabled: [RunningPartner]
    private let partnersByID: [String: RunningPartner]
    let inFlight: InFlightCalls
    /// ECs with nothing to call until a known time; a reload starts a new one (partners changed).
    let freshMemo: FreshECMemo
    let metrics: KernelMetrics
    let logger: Logger
    /// This kernel's name on the leases it takes in a shared store.
    let leaseHolder: String
    let storeWarnings: StoreWarnings
    /// Withdrawals the store refused, tried again by ``retryPendingWithdrawals()``.
    package let pendingWithdrawals: PendingWithdrawals
    /// The source domains of the partners with an opt-out endpoint, enabled or not.
    let optOutDomains: [String]

    /// Creates a kernel for `registry`, with the stores, transport and consent rules it calls.
    ///
    /// - Parameters:
    ///   - registry: the partners it decides for.
    ///   - configuration: fan-out, caps, routes and circuit settings.
    ///   - graph: where UIDs are read and written.
    ///   - rateLimiter: where per-EC rate limits are counted (and, in a shared store, leases and budgets kept).
    ///   - transport: sends the partner calls.
    ///   - consent: the rules applied to each request's consent signals.
    ///   - clock: the wall clock TTLs and windows are measured on (`SystemWallClock`, from
    ///     `PullSyncStorage`, for the system's).
    ///   - random: draws the fair order of partners. Default a fast generator seeded from the system's
    ///     (``SplitMixRandomSource``).
    ///   - metricsFactory: where the kernel's metrics go. Default none.
    ///   - logger: where the kernel logs. Default nowhere.
    public convenience init(
        registry: PartnerRegistry,
        configuration: PullSyncConfiguration = PullSyncConfiguration(),
        graph: any IdentityGraph,
        rateLimiter: any RateLimiter,
        transport: any PullTransport,
        consent: any ConsentRules,
        clock: any WallClock,
        random: any RandomSource = SplitMixRandomSource(),
        metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance,
        logger: Logger = Logger(label: "pullsync", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        // Not from `random`: that one is the fair order's, and tests replay it from a seed.
        var generator = SystemRandomNumberGenerator()
        self.init(
            registry: registry,
            configuration: configuration,
            graph: graph,
            rateLimiter: rateLimiter,
            transport: transport,
            consent: consent,
            clock: clock,
            random: random,
            protections: [:],
            inFlight: InFlightCalls(),
            metrics: KernelMetrics(factory: metricsFactory),
            logger: logger,
            leaseHolder: String(generator.next(), radix: 16),
            storeWarnings: StoreWarnings(),
            pendingWithdrawals: PendingWithdrawals()
        )
    }

    /// - Parameter protections: the protections of partners that carry over from a reload, by id.
    private init(
        registry: PartnerRegistry,
        configuration: PullSyncConfiguration,
        graph: any IdentityGraph,
        rateLimiter: any RateLimiter,
        transport: any PullTransport,
        consent: any ConsentRules,
        clock: any WallClock,
        random: any RandomSource,
        protections: [String: PartnerProtection],
        inFlight: InFlightCalls,
        metrics: KernelMetrics,
        logger: Logger,
        leaseHolder: String,
        storeWarnings: StoreWarnings,
        pendingWithdrawals: PendingWithdrawals
    ) {
        self.registry = registry
        self.configuration = configuration
        self.graph = graph
        self.rateLimiter = rateLimiter
        if let store = graph as? any CombinedStore, let limiter = rateLimiter as? any CombinedStore, store === limiter {
            combined = store
        } else {
            combined = nil
        }
        self.transport = transport
        self.consent = consent
        self.clock = clock
        self.random = random
        let partners = registry.partners.enumerated().map { ordinal, partner in
            RunningPartner(
                partner,
                ordinal: ordinal,
                protection: protections[partner.id]?.carried(toBudget: partner.policy.budgetPerSecond)
                    ?? PartnerProtection(
                        budget: partner.policy.budgetPerSecond,
                        policy: configuration.circuitBreaker,
                        maxInFlight: configuration.effectiveMaxInFlightPerPartner
                    ),
                metricsFactory: metrics.factory
            )
        }
        self.partners = partners
        self.enabled = registry.enabledIndices.map { partners[$0] }
        self.partnersByID = Dictionary(partners.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        self.inFlight = inFlight
        self.freshMemo = FreshECMemo(capacity: configuration.freshMemoCapacity)
        self.metrics = metrics
        self.logger = logger
        self.leaseHolder = leaseHolder
        self.storeWarnings = storeWarnings
        self.pendingWithdrawals = pendingWithdrawals
        self.optOutDomains = registry.partners.filter { $0.optOut != nil }.map(\.sourceDomain)
    }

    /// This kernel with `registry` in its place, for a hot reload of the partners. Everything
    /// else is shared: stores, transport, clock, randomness, the lease holder name, and the
    /// (partner, EC) pairs in flight (by partner id), so a call still in flight on this kernel
    /// keeps a new one from making the same call. A partner that stays (same id) keeps its
    /// circuit, pause and, if its budget is unchanged, its budget state (see
    /// ``PartnerProtection/carried(toBudget:)``); a new partner starts fresh. Calls in flight
    /// finish on the kernel that planned them, against the partner as it was.
    package func reloaded(with registry: PartnerRegistry) -> PullKernel {
        PullKernel(
            registry: registry,
            configuration: configuration,
            graph: graph,
            rateLimiter: rateLimiter,
            transport: transport,
            consent: consent,
            clock: clock,
            random: random,
            protections: partnersByID.mapValues(\.protection),
            inFlight: inFlight,
            metrics: metrics,
            logger: logger,
            leaseHolder: leaseHolder,
            storeWarnings: storeWarnings,
            pendingWithdrawals: pendingWithdrawals
        )
    }

    /// The running partner with `id`.
    func partner(_ id: String) -> RunningPartner? { partnersByID[id] }

    // MARK: Deciding

    /// The checks that need no store: route, EC format, and request-level consent (the host's
    /// decision, GPC, US opt-outs, consent strings that don't decode). Cheap enough to run on
    /// the request path before anything is queued.
    public func gate(_ request: OrganicRequest) -> GateResult {
        admission(request).result
    }

    /// The gate's result, and the EC to withdraw when the request affirmatively denies consent
    /// (the host's decision, GPC, an opt-out) and carries a well-formed EC.
    ///
    /// - Parameters:
    ///   - memo: whether an EC the fresh-EC memo holds for is skipped (`fresh_memo`); `explain`
    ///     decides it in full instead.
    ///   - facts: what the host already worked out for `request` with this kernel's rules; the
    ///     gate doesn't work it out again.
    package func admission(
        _ request: OrganicRequest,
        memo: Bool = true,
        facts: GateFacts? = nil
    ) -> (result: GateResult, withdrawing: EdgeCookie?) {
        guard facts != nil || configuration.routes.isOrganic(request.path) else { return (.skip(.route), nil) }
        let parsed = facts.map(\.edgeCookie) ?? request.edgeCookie.flatMap(configuration.edgeCookieFormat.parse)
        guard let edgeCookie = parsed else { return (.skip(.invalidEC), nil) }
        // Before any consent string is read: the memo holds only for the very signals it was
        // made under, which passed this gate then.
        if memo, freshMemoHolds(for: request, edgeCookie) { return (.skip(.freshMemo), nil) }
        if let denial = facts?.denial ?? consent.requestDenial(request.consentStrings, host: request.consent) {
            return (.skip(denial.reason), denial.withdraws ? edgeCookie : nil)
        }
        return (.pass(edgeCookie), nil)
    }

    /// Whether the fresh-EC memo holds for `request` now.
    func freshMemoHolds(for request: OrganicRequest, _ edgeCookie: EdgeCookie) -> Bool {
        freshMemoHolds(ECKey(edgeCookie), request.consent, request.consentStrings)
    }

    private func freshMemoHolds(_ ec: ECKey, _ decision: ConsentDecision, _ strings: ConsentStrings) -> Bool {
        guard let consent = FreshECMemo.consent(decision, strings) else { return false }
        return freshMemo.holds(ec, consent: consent, at: clock.now())
    }

    /// Whether `path` is organic under this kernel's routes. For a host in another module: read
    /// there, `configuration.routes` is copied (a retain and a release of each of its arrays).
    package func isOrganic(_ path: String) -> Bool {
        configuration.routes.isOrganic(path)
    }

    /// This kernel's EC format's ``EdgeCookieFormat/hashLength(of:)`` (see ``isOrganic(_:)``).
    package func ecHashLength(of raw: Substring) -> Int? {
        configuration.edgeCookieFormat.hashLength(of: raw)
    }

    /// Whether the fresh-EC memo holds now for a well-formed EC whose hash is `ecHash`, under
    /// these signals: the gate's `fresh_memo` check for a host that reads the EC in place (a
    /// route found organic, the EC checked by this kernel's format), with nothing made for it.
    package func freshMemoHolds(ecHash: Substring, consent: ConsentDecision, strings: ConsentStrings) -> Bool {
        freshMemoHolds(ECKey(ecHash: ecHash), consent, strings)
    }

    /// Decides every partner for `request` without sending, counting or writing anything:
    /// what `pullsync explain` prints. Disabled partners are included.
    public func explain(_ request: OrganicRequest) async -> RequestPlan {
        await plan(request, gated: nil, mode: Explaining())
    }

    /// Decides `request` for real: creates the root entry of an EC issued on this request,
    /// takes budget tokens and in-flight places, and counts the calls it plans in the rate
    /// limiter. What it takes is given back only by executing the plan, so it is not public:
    /// use ``process(_:)`` or a ``PullDispatcher``.
    ///
    /// - Parameter gated: the EC from a ``gate(_:)`` already passed (the dispatcher gates at
    ///   submission), so the checks are not run twice.
    package func plan(_ request: OrganicRequest, gated: EdgeCookie? = nil) async -> RequestPlan {
        await plan(request, gated: gated, mode: Committing())
    }

    /// Gives back everything a committed plan took for calls that will never be sent (for
    /// benchmarks and tests that inspect plans without executing them). Rate-limit counts stay.
    package func abandon(_ plan: RequestPlan) {
        guard let edgeCookie = plan.edgeCookie else { return }
        for call in plan.calls { release(call.partner, ecHash: edgeCookie.hashKey, probe: call.isProbe) }
    }

    /// Gives back what planning took for a call that won't be sent.
    func release(_ partner: RunningPartner, ecHash: ECHash, probe: Bool) {
        partner.protection.refund(probe: probe)
        inFlight.end(partner.id, ecHash: ecHash)
    }

    /// Whether `url` may be sent to for `partner`: on its allow-list, and `https`, unless the
    /// host is loopback and the development switch allows it.
    package func isAllowed(_ url: PartnerURL, for partner: Partner) -> Bool {
        guard partner.policy.allowedHosts.contains(url.host) else { return false }
        if HostName.isLoopback(url.host) {
            return configuration.allowLoopback && (url.scheme == "https" || url.scheme == "http")
        }
        return url.scheme == "https"
    }

    /// Each partner's protection state now (circuit and pause), in registry order: what health shows.
    package func protectionStates() -> [(partnerID: String, state: ProtectionState)] {
        let now = clock.now()
        return partners.map { ($0.id, $0.protection.state(at: now)) }
    }

    // MARK: Withdrawal

    /// Withdraws `edgeCookie`'s consent: marks it withdrawn in the identity graph and forgets its
    /// UIDs. Calls in flight for it store nothing (the graph refuses their writes), and later
    /// requests with it call no one, even if consent is given again. Returns whether the EC was
    /// known. What the admin API's `DELETE /_pullsync/ids/{ec_id}` does.
    public func withdraw(_ edgeCookie: EdgeCookie) async throws -> Bool {
        freshMemo.forget(ECKey(edgeCookie))
        do {
            metrics.roundTrip(.withdraw)
            let known = try await graph.withdraw(ecHash: edgeCookie.hashString, at: clock.now(), notifying: optOutDomains)
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
        freshMemo.forget(ECKey(edgeCookie))
        let result: String
        do {
            metrics.roundTrip(.lookup)
            let record = try await graph.record(ecHash: hash)
            if record?.withdrawn == true {
                result = "already_withdrawn"
            } else if record == nil && !issuedHere {
                result = "unknown_ec"
            } else {
                if record == nil {
                    metrics.roundTrip(.createRoot)
                    _ = try await graph.createRoot(for: edgeCookie, at: clock.now())
                }
                metrics.roundTrip(.withdraw)
                try await graph.withdraw(ecHash: hash, at: clock.now(), notifying: optOutDomains)
                result = "withdrawn"
                logger.debug("consent withdrawn for an EC")
            }
        } catch {
            // Kept and tried again (the store may be down): the user's choice is not lost.
            let dropped = pendingWithdrawals.add(.init(edgeCookie: edgeCookie, issuedHere: issuedHere))
            storeWarnings.write.warning(
                "identity graph failed to withdraw an EC; trying again",
                metadata: ["error": "\(error)"],
                to: logger
            )
            if dropped { metrics.withdrawal("dropped") }
            result = "error"
        }
        metrics.withdrawal(result)
        return result
    }

    /// Tries again the withdrawals the store refused (``PendingWithdrawals``); those that fail
    /// again stay for the next try. Returns how many reached the store.
    package func retryPendingWithdrawals() async -> Int {
        var done = 0
        for entry in pendingWithdrawals.all
        where await withdrawDenied(entry.edgeCookie, issuedHere: entry.issuedHere) != "error" {
            pendingWithdrawals.remove(entry)
            done += 1
        }
        return done
    }

    // MARK: Calling

    /// Plans `request` and makes its calls (sliding window, no queue), returning everything
    /// that happened. The dispatcher does the same behind its queue.
    package func process(_ request: OrganicRequest) async -> RequestReport {
        let plan = await plan(request)
        let results = await execute(plan, globalSlots: nil, shouldStartMore: { true })
        return RequestReport(plan: plan, results: results)
    }

    /// Makes a plan's calls with at most `perRequestConcurrency` in flight: when one ends,
    /// the next starts, so one slow partner never holds the others back.
    ///
    /// The window is `perRequestConcurrency` lanes, each taking the next call as soon as its
    /// own ends, rather than a task per call: one lane runs in this task and the others in
    /// child tasks, so a request of six calls starts two tasks, not six, and this task isn't
    /// woken for each call's end (measure 4 in BENCHMARKS.md).
    func execute(
        _ plan: RequestPlan,
        globalSlots: AsyncSemaphore?,
        shouldStartMore: @escaping @Sendable () -> Bool
    ) async -> [CallResult] {
        guard let edgeCookie = plan.edgeCookie, !plan.calls.isEmpty else { return [] }
        let ecHash = plan.ecHash ?? edgeCookie.hashString
        let writer = makeWriter(ecHash: ecHash, calls: plan.calls)
        let window = CallWindow(plan.calls)
        @Sendable func lane() async {
            // A lane keeps its global slot from one call of the request to the next: giving it
            // back would wake a lane of another request, and this one would wait for a slot
            // again (two more turns of the scheduler per call). A request, once started, ends
            // sooner; the slot goes back when the lane has no call left.
            var holdsSlot = false
            defer { if holdsSlot { globalSlots?.release() } }
            while shouldStartMore(), let call = window.next() {
                if let globalSlots, !holdsSlot {
                    do {
                        try await globalSlots.acquire()
                        holdsSlot = true
                    } catch {
                        release(call.partner, ecHash: edgeCookie.hashKey, probe: call.isProbe)
                        continue
                    }
                    // Shutdown may have begun while this call waited for a slot: it was
                    // never sent, so it is not sent now either.
                    guard shouldStartMore() else {
                        release(call.partner, ecHash: edgeCookie.hashKey, probe: call.isProbe)
                        break
                    }
                }
                guard await mayStartSending(call) else {
                    release(call.partner, ecHash: edgeCookie.hashKey, probe: call.isProbe)
                    continue
                }
                let result = await self.call(call, ecHash: ecHash, writer: writer)
                window.ended(result)
            }
        }
        let lanes = min(configuration.perRequestConcurrency, plan.calls.count)
        if lanes == 1 {
            await lane()
        } else {
            await withDiscardingTaskGroup { group in
                for _ in 1..<lanes { group.addTask { await lane() } }
                await lane()
            }
        }
        // Calls never started (shutdown) give their counted slot back to nobody: the rate
        // limit stays conservative, and the budget is refunded.
        let (results, unstarted) = window.finish()
        for call in unstarted { release(call.partner, ecHash: edgeCookie.hashKey, probe: call.isProbe) }
        // Every call of the plan must have ended (none left unstarted at shutdown).
        if let seed = plan.memoSeed, results.count == plan.calls.count {
            rememberQuiet(edgeCookie, seed, after: results)
        }
        if rateLimiter.sharesLeases, !writer.releasedLeases {
            // Every call of the request has ended and its last write didn't give the leases back
            // (a call stored nothing, or wasn't sent): they go back in one round trip. (A fast
            // partner's lease outlives its call by the slow partners' time; its UID is fresh by
            // then, so nobody else would call it anyway.)
            await releaseLeases(plan.calls.map { RateLimitKey(partnerID: $0.partnerID, ecHash: ecHash) })
        }
        return results
    }

    /// After a plan's calls: when each one stored a UID and every partner not called held until
    /// a known time (`seed`), nothing can be called for the EC until the earliest expiry, as
    /// after a decision that called nobody. The memo holds from now, not after one more decision.
    private func rememberQuiet(_ edgeCookie: EdgeCookie, _ seed: FreshECMemo.Seed, after results: [CallResult]) {
        var until = seed.until
        var uids = seed.uids
        for result in results {
            guard let stored = result.stored else { return }
            until = min(until, stored.uid.freshUntil(ttl: partners[stored.partner].definition.policy.ttl))
            uids?.append(stored)
        }
        // In registry order, as a decision keeps them (EIDs list them so).
        uids?.sort { $0.partner < $1.partner }
        freshMemo.remember(ECKey(edgeCookie), consent: seed.consent, until: until, uids: uids)
    }

    /// Gives back this kernel's leases on `keys`; they lapse on their own if that fails.
    private func releaseLeases(_ keys: [RateLimitKey]) async {
        do {
            metrics.roundTrip(.release)
            try await rateLimiter.releaseLeases(keys, holder: leaseHolder)
        } catch {
            storeWarnings.release.warning(
                "releasing call leases failed; they lapse on their own",
                metadata: ["error": "\(error)"],
                to: logger
            )
        }
    }

    /// The budget checked again when the call is about to go, against the times calls were
    /// really sent: planning takes a token, but calls wait for slots and connections after it,
    /// and a budget measured at planning lets them bunch up at the partner. A partner with a
    /// budget gets at most `budget` calls in any second of send time from this process, and,
    /// with a store that shares budgets, from all nodes together. A call refused here is not
    /// sent; it counts as a `budget` decision too.
    func mayStartSending(_ call: PlannedCall) async -> Bool {
        await mayStartSending(call.partner)
    }

    func mayStartSending(_ partner: RunningPartner) async -> Bool {
        guard let perSecond = partner.definition.policy.budgetPerSecond else { return true }
        let refuse = {
            partner.metrics.decision(.skip(.budget))
            return false
        }
        guard partner.protection.takeSendSlot(at: clock.now()) else { return refuse() }
        guard rateLimiter.sharesBudgets else { return true }
        do {
            let budget = SharedBudget(partnerID: partner.id, perSecond: perSecond)
            metrics.roundTrip(.budget)
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
        await self.call(call, ecHash: ecHash, writer: makeWriter(ecHash: ecHash, calls: []))
    }

    /// One request's UID writes go through one batcher. With a store that keeps both, the last
    /// write gives the leases of `calls` back (one round trip fewer).
    private func makeWriter(ecHash: String, calls: [PlannedCall]) -> WriteBatcher {
        let releasing = combined.flatMap { store in
            store.sharesLeases && !calls.isEmpty
                ? (store, leaseHolder, calls.map { RateLimitKey(partnerID: $0.partnerID, ecHash: ecHash) })
                : nil
        }
        return WriteBatcher(
            graph: graph,
            releasing: releasing,
            calls: calls.count,
            ecHash: ecHash,
            metrics: metrics,
            logger: logger
        ) { [storeWarnings, logger] error in
            storeWarnings.write.warning("identity graph write failed", metadata: ["error": "\(error)"], to: logger)
        }
    }

    func call(_ call: PlannedCall, ecHash: String, writer: WriteBatcher) async -> CallResult {
        let running = call.partner
        let partner = running.definition
        let started = ContinuousClock.now
        metrics.inFlight.increment()
        let (status, outcome, retryAfter) = await send(call.request, context: call.context, partner: partner)
        metrics.inFlight.decrement()
        let duration = ContinuousClock.now - started
        let now = clock.now()
        // Our own refusals and calls cut short by shutdown say nothing about the partner's health.
        let cancelled = Task.isCancelled
        if let retryAfter, !cancelled {
            let until = running.protection.pause(for: retryAfter, probe: call.isProbe, at: now)
            running.metrics.pause()
            logger.warning(
                "partner asked for a pause; no calls to it until it ends",
                metadata: [
                    "partner": "\(partner.id)", "status": "\(status ?? 0)",
                    "pause_s": "\((until - now).nanoseconds / 1_000_000_000)",
                ]
            )
        } else if outcome != .refusedTarget && !cancelled {
            let change = running.protection.record(
                failed: outcome.isPartnerFailure,
                probe: call.isProbe,
                at: now
            )
            if let change { log(change, partner: partner) }
        } else {
            running.protection.refund(probe: call.isProbe)
        }
        defer { inFlight.end(call.partnerID, ecHash: call.context.edgeCookie.hashKey) }
        // A call cut short by shutdown is not the partner's answer: it is logged, not counted
        // (unless the answer made it in before the cut).
        if !cancelled || outcome.outcomeClass == .uid {
            running.metrics.outcome(outcome.outcomeClass)
            running.metrics.duration.recordNanoseconds(duration.nanoseconds)
        }

        var write: WriteResult?
        var stored: FreshECMemo.KeptUID?
        if case .uid(let uid, let expiresAt) = outcome {
            writer.callEnded(writing: true)
            let value = PartnerUID(uid: uid, syncedAt: now, expiresAt: expiresAt)
            write = await writer.write(
                UIDWrite(
                    sourceDomain: partner.sourceDomain,
                    value: value,
                    expected: call.expected,
                    plannedAt: call.context.now
                )
            )
            running.metrics.write(write)
            if write == .stored { stored = FreshECMemo.KeptUID(partner: running.ordinal, uid: value) }
        } else {
            writer.callEnded(writing: false)
        }
        log(outcome, write: write, partner: partner, duration: duration, cancelled: cancelled)
        return CallResult(
            partnerID: partner.id,
            outcome: outcome,
            write: write,
            duration: duration,
            status: status,
            stored: stored
        )
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
        let limits = TransportLimits(timeout: partner.policy.timeout, maxBodyBytes: configuration.maxBodyBytes)
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

    func log(_ change: CircuitChange, partner: Partner) {
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
    package func probe(
        partnerID: String,
        edgeCookie: EdgeCookie,
        consentStrings: ConsentStrings = ConsentStrings()
    ) async throws(AdapterError) -> ProbeResult? {
        guard let running = partnersByID[partnerID] else { return nil }
        let partner = running.definition
        let context = partner.context(edgeCookie, at: clock.now(), consentStrings: consentStrings)
        let request = try partner.adapter.makeRequest(for: context)
        let started = ContinuousClock.now
        let (status, outcome, _) = await send(request, context: context, partner: partner)
        let duration = ContinuousClock.now - started
        running.metrics.outcome(outcome.outcomeClass)
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
        let failed = !cancelled && (outcome.isPartnerFailure || outcome == .refusedTarget)
        // Most calls log at debug, which is usually off: the metadata is built only when it is on.
        guard logger.logLevel <= (failed ? .warning : .debug) else { return }
        var metadata: Logger.Metadata = [
            "partner": "\(partner.id)",
            "outcome": "\(outcome.className)",
            "duration_ms": "\(duration.nanoseconds / 1_000_000)",
        ]
        if case .httpError(let status) = outcome { metadata["status"] = "\(status)" }
        if let write { metadata["write"] = "\(write.rawValue)" }
        if cancelled {
            logger.debug("pull call cut short by shutdown", metadata: metadata)
        } else if failed {
            logger.warning("pull call failed", metadata: metadata)
        } else {
            logger.debug("pull call finished", metadata: metadata)
        }
    }
}

/// One throttle per kind of store failure, so each kind still shows up in the log.
struct StoreWarnings: Sendable {
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

/// What a host established for an organic request, with the kernel's own rules, on its way to
/// the gate: the Hummingbird middleware checks the route and parses the EC to decide whether to
/// issue one, and applies the request-level consent rules before issuing. Handed to
/// `PullDispatcher.prepare(_:facts:)` so that the page's path does each only once.
package struct GateFacts: Sendable {
    /// The request's EC, parsed: `nil` when none is well formed. (Facts exist only for a route
    /// found organic.)
    package var edgeCookie: EdgeCookie?
    /// The request-level consent rules' answer, when they were applied: `.some(nil)` for no
    /// denial, `nil` when not applied (the gate applies them if it gets that far).
    package var denial: ConsentDenial??
    /// The host asked the fresh-EC memo already (``PullKernel/freshMemoHolds(ecHash:consent:strings:)``)
    /// and it didn't hold: the dispatcher's gate doesn't ask it again.
    package var freshMemoConsulted: Bool

    package init(edgeCookie: EdgeCookie?, denial: ConsentDenial?? = nil, freshMemoConsulted: Bool = false) {
        self.edgeCookie = edgeCookie
        self.denial = denial
        self.freshMemoConsulted = freshMemoConsulted
    }
}
