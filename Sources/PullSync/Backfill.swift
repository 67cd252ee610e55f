package import CoreMetrics
package import Logging
import PullSyncConsent
package import PullSyncKernel
package import PullSyncStorage
import ServiceLifecycle
import Synchronization

/// How a backfill runs.
package struct BackfillOptions: Sendable, Hashable {
    /// Calls per second at most (attempts are paced: skips take a slot too), and never more
    /// than the partner's budget. Default 10.
    package var rate: Double
    /// ECs to handle in this run at most, `nil` for all; the checkpoint keeps the rest for the
    /// next run.
    package var limit: Int?
    /// Calls in flight at once. Default: enough for `rate` even if every call took the
    /// partner's whole timeout, at most 256.
    package var concurrency: Int?
    /// Candidates read from the store at a time. Default 500.
    package var pageSize: Int
    /// How often the checkpoint is saved while running (and always when the run stops).
    /// Default 1 s.
    package var checkpointInterval: Duration
    /// How long the backfill waits before trying again when the partner can't be called for a
    /// while (circuit open, paused by `Retry-After`, budget spent, store unavailable). Default 1 s.
    package var retryPause: Duration
    /// How old an EC's consent snapshot may be for a TCF partner to be called under it.
    /// Default ``defaultConsentMaxAge``.
    package var consentMaxAge: Duration

    /// 13 months (395 days), the TCF's re-consent period: a CMP asks again after it.
    package static let defaultConsentMaxAge = Duration.seconds(395 * 86_400)

    package init(
        rate: Double = 10,
        limit: Int? = nil,
        concurrency: Int? = nil,
        pageSize: Int = 500,
        checkpointInterval: Duration = .seconds(1),
        retryPause: Duration = .seconds(1),
        consentMaxAge: Duration = BackfillOptions.defaultConsentMaxAge
    ) {
        self.consentMaxAge = consentMaxAge
        self.rate = rate
        self.limit = limit
        self.concurrency = concurrency
        self.pageSize = pageSize
        self.checkpointInterval = checkpointInterval
        self.retryPause = retryPause
    }
}

/// Where a backfill stands.
package struct BackfillProgress: Sendable, Hashable {
    /// ECs handled, over every run of this backfill (a resumed one counts the earlier runs).
    package var processed: Int
    /// `processed` plus the candidates left when this run started.
    package var total: Int
    /// ECs handled by this run.
    package var processedThisRun: Int
    /// Calls sent by this run.
    package var callsThisRun: Int
    /// What became of each EC, over every run: call outcomes (`uid`, `not_found`, ...,
    /// `uid_conflict` for a UID another writer beat) and skip reasons (`fresh`, `rate_limited`, ...).
    package var outcomes: [String: Int]
    /// Time since this run started.
    package var elapsed: Duration
    /// Whether this run resumed from a checkpoint.
    package var resumed: Bool
    /// ECs started by this run (each start is paced; a skip starts no call).
    package var startsThisRun = 0
    /// Time from this run's first start to its latest.
    package var startSpan: Duration = .zero

    /// Starts per second in this run, between its first and latest start: what `rate` bounds.
    package var pacePerSecond: Double {
        let seconds = startSpan.seconds
        return startsThisRun > 1 && seconds > 0 ? Double(startsThisRun - 1) / seconds : 0
    }

    /// ECs handled per second in this run.
    package var ratePerSecond: Double {
        let seconds = elapsed.seconds
        return seconds > 0 ? Double(processedThisRun) / seconds : 0
    }

    /// The time left at this run's pace, when it can be told.
    package var eta: Duration? {
        let rate = ratePerSecond
        guard rate > 0 else { return nil }
        return .milliseconds(Int64(Double(max(0, total - processed)) / rate * 1000))
    }

    /// Whether `outcome` names a call's outcome (rather than a skip).
    package static func isCall(_ outcome: String) -> Bool {
        OutcomeClass(rawValue: outcome) != nil || outcome.hasPrefix("uid_")
    }
}

/// How a backfill run ended.
package struct BackfillSummary: Sendable, Hashable {
    package enum Ending: String, Sendable, Hashable {
        /// Every candidate was handled; the checkpoint is gone.
        case complete
        /// `limit` ECs were handled; the checkpoint keeps the rest.
        case limit
        /// Stopped by a signal or by cancellation; the checkpoint keeps the rest.
        case interrupted
    }

    package var ending: Ending
    package var progress: BackfillProgress
}

/// Why a backfill can't run.
package struct BackfillError: Error, Sendable, Hashable, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// Fills one partner's UIDs for the ECs already in the identity graph, at a set pace, through
/// the same kernel rules as organic pull sync (per-EC rate limit, budget, circuit breaker, URL
/// safety, response classification, conditional writes).
///
/// - Candidates are the known, not withdrawn ECs whose UID for the partner is missing or stale,
///   visited in EC-hash order; the position is checkpointed in the store, so a run that stops
///   (signal, `limit`, crash) is resumed by the next one.
/// - A partner is called at most once per EC within its rate-limit window, whatever happens:
///   the backfill counts its calls under the organic key (`pull:{partner}:{ec_hash}`) with a
///   limit of one, so an EC that an earlier (interrupted) run or organic traffic called in the
///   window is skipped as `rate_limited`.
/// - Calls start at most `rate` per second, spaced by `1/rate` measured from the previous
///   start, so no second ever sees more than `rate` starts.
/// - A graceful shutdown (SIGINT in `pullsync backfill`) stops starting calls, lets those in
///   flight finish (each within the partner's timeout), saves the checkpoint and returns.
package final class Backfill: Sendable {
    /// The most calls in flight a backfill derives from its rate and the partner's timeout.
    package static let maxDerivedConcurrency = 256

    /// The partner being filled.
    package let partner: Partner
    package let options: BackfillOptions
    private let kernel: PullKernel
    private let source: any BackfillSource
    private let clock: any WallClock
    private let logger: Logger
    private let concurrency: Int
    private let current: Mutex<BackfillProgress?> = Mutex(nil)
    private let consentRules = IABConsentRules()

    /// - Throws: ``BackfillError`` when the partner is unknown or disabled, or when the options
    ///   are out of range.
    package init(
        partnerID: String,
        registry: PartnerRegistry,
        store: any PullSyncStore,
        transport: any PullTransport,
        configuration: PullSyncConfiguration = PullSyncConfiguration(),
        options: BackfillOptions = BackfillOptions(),
        clock: any WallClock = SystemWallClock(),
        metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance,
        logger: Logger = Logger(label: "pullsync.backfill", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws(BackfillError) {
        guard let found = registry[id: partnerID], let index = registry.index(of: partnerID) else {
            let known = registry.partners.map(\.id).joined(separator: ", ")
            throw BackfillError(
                "no partner '\(partnerID)' in the manifests (partners: \(known.isEmpty ? "none" : known))"
            )
        }
        guard registry.isEnabled(index) else {
            throw BackfillError(
                "partner '\(partnerID)' is disabled: \(found.disabledReason ?? "pull.enabled is false")"
            )
        }
        guard options.rate > 0, options.rate.isFinite else {
            throw BackfillError("the rate must be a positive number of calls per second")
        }
        if let limit = options.limit, limit < 1 { throw BackfillError("the limit must be at least 1") }
        if let concurrency = options.concurrency, concurrency < 1 {
            throw BackfillError("the concurrency must be at least 1")
        }
        guard options.consentMaxAge > .zero else { throw BackfillError("the consent age must be positive") }
        guard options.pageSize >= 1 else { throw BackfillError("the page size must be at least 1") }

        var filling = found
        // One call per EC per window: a call already counted in the window (organic, or an
        // earlier run) makes this one a skip.
        filling.policy.rateLimit = RateLimitPolicy(calls: 1, window: found.policy.rateLimit.window)
        let single: PartnerRegistry
        do {
            single = try PartnerRegistry([filling])
        } catch {
            throw BackfillError(error.description)
        }
        self.partner = found
        var options = options
        // The budget caps all traffic to the partner: pacing above it would only spend the
        // run waiting on refusals.
        if let budget = found.policy.budgetPerSecond { options.rate = min(options.rate, budget) }
        self.options = options
        self.source = store
        self.clock = clock
        self.logger = logger
        let timeout = found.policy.timeout.seconds
        self.concurrency =
            options.concurrency ?? min(Self.maxDerivedConcurrency, max(1, Int((options.rate * max(timeout, 0.001)).rounded(.up))))
        var kernelConfiguration = configuration
        kernelConfiguration.perRequestConcurrency = 1
        kernelConfiguration.maxCallsPerRequest = 1
        kernelConfiguration.maxInFlightPerPartner = max(self.concurrency, configuration.maxInFlightPerPartner ?? 0)
        self.kernel = PullKernel(
            registry: single,
            configuration: kernelConfiguration,
            graph: store,
            rateLimiter: store,
            transport: transport,
            consent: consentRules,
            clock: clock,
            metricsFactory: metricsFactory,
            logger: logger
        )
    }

    /// Calls in flight at once in ``run()``.
    package var effectiveConcurrency: Int { concurrency }

    /// Where the running backfill stands; `nil` before ``run()`` has read its checkpoint.
    package var progress: BackfillProgress? { current.withLock { $0 } }

    private var query: BackfillQuery {
        BackfillQuery(sourceDomain: partner.sourceDomain, ttl: partner.policy.ttl, now: clock.now())
    }

    // MARK: Consent

    /// Why `candidate`'s consent snapshot keeps it out of the backfill, as the outcome it is
    /// counted under; `nil` when the partner may be called for it. The kernel applies the same
    /// rules again to the call.
    ///
    /// - A partner with a `tcf_vendor_id` needs a snapshot (`no_consent_snapshot`) no older
    ///   than ``BackfillOptions/consentMaxAge`` (`consent_outdated`); every partner needs one
    ///   whose signals were kept (not over ``ConsentSnapshot/maxBytes``), when there is one.
    /// - Every partner is then held to the snapshot's signals as to a request's: the request
    ///   rules (`us_opt_out`, `malformed_consent`) and the per-partner ones (`tcf_consent`,
    ///   `gpp_section`). An EC with no snapshot is judged as a request without signals.
    package func consentExclusion(_ candidate: BackfillCandidate, at now: Timestamp) -> String? {
        let needsSnapshot = partner.policy.consent.tcfVendorID != nil
        guard let snapshot = candidate.consent else { return needsSnapshot ? Self.noSnapshot : nil }
        // Signals seen but too large to keep: unknown, for every partner (they may refuse it).
        guard let strings = snapshot.strings else { return Self.noSnapshot }
        if needsSnapshot, now - snapshot.seenAt > options.consentMaxAge { return Self.outdated }
        if let denial = consentRules.requestDenial(strings, host: .granted) { return denial.reason.rawValue }
        let rules = consentRules.partnerRules(for: strings)
        return (rules.requestDenial ?? rules.denial(for: partner.policy.consent))?.reason.rawValue
    }

    /// The outcome of an EC without a (readable) consent snapshot, for a TCF partner.
    package static let noSnapshot = "no_consent_snapshot"
    /// The outcome of an EC whose snapshot is older than ``BackfillOptions/consentMaxAge``.
    package static let outdated = "consent_outdated"

    // MARK: Dry run

    /// What ``dryRun(sample:)`` found.
    package struct DryRun: Sendable {
        /// The checkpoint a run would resume from.
        package var checkpoint: BackfillCheckpoint?
        /// The candidates left: known, not withdrawn, missing or stale.
        package var candidates: Int
        /// How many of them their consent snapshot keeps out, by rule (see ``consentExclusion(_:at:)``).
        package var excluded: [String: Int]
        /// The first candidates and what would be done for each: a consent exclusion or the
        /// kernel's decision.
        package var sample: [(ecID: String, decision: String)]
    }

    /// What ``run()`` would do, without calling or writing anything: the candidates left
    /// (after the checkpoint, if any), how many of them each consent rule excludes (every
    /// candidate is read), and the first `sample` candidates' decisions.
    package func dryRun(sample: Int = 10) async throws -> DryRun {
        let checkpoint = try await source.backfillCheckpoint(partnerID: partner.id)
        let query = self.query
        let now = query.now
        var result = DryRun(checkpoint: checkpoint, candidates: 0, excluded: [:], sample: [])
        var after = checkpoint?.cursor
        while true {
            let page = try await source.backfillCandidates(query, after: after, limit: options.pageSize)
            for candidate in page {
                result.candidates += 1
                let excluded = consentExclusion(candidate, at: now)
                if let excluded { result.excluded[excluded, default: 0] += 1 }
                guard result.sample.count < sample else { continue }
                if let excluded {
                    result.sample.append((candidate.ecID, "skip (\(excluded))"))
                } else {
                    let plan = await kernel.explain(Self.request(for: candidate))
                    let decision = plan.decision(for: partner.id) ?? .skip(plan.requestSkip ?? .unknownEC)
                    result.sample.append((candidate.ecID, decision.description))
                }
            }
            guard page.count == options.pageSize, let last = page.last else { break }
            after = last.ecHash
        }
        return result
    }

    // MARK: Running

    private struct Item: Sendable {
        var sequence: Int
        var candidate: BackfillCandidate
    }

    private enum Handled: Sendable {
        case done(Item, outcome: String, called: Bool)
        /// The partner can't be called for a while; nothing was sent.
        case retry(Item, SkipReason)
    }

    /// Runs until every candidate is handled, `limit` is reached, or a graceful shutdown (or
    /// cancellation) stops it; then saves the checkpoint (or clears it when complete).
    ///
    /// - Throws: store errors reading the checkpoint or counting the candidates (nothing was
    ///   called yet); later store errors are retried after ``BackfillOptions/retryPause``.
    package func run() async throws -> BackfillSummary {
        let started = ContinuousClock.now
        let checkpoint = try await source.backfillCheckpoint(partnerID: partner.id)
        let startedAt = checkpoint?.startedAt ?? clock.now()
        let remaining = try await source.countBackfillCandidates(query, after: checkpoint?.cursor)
        var progress = BackfillProgress(
            processed: checkpoint?.processed ?? 0,
            total: (checkpoint?.processed ?? 0) + remaining,
            processedThisRun: 0,
            callsThisRun: 0,
            outcomes: checkpoint?.outcomes ?? [:],
            elapsed: .zero,
            resumed: checkpoint != nil
        )
        publish(progress)
        logger.info(
            "backfill starting",
            metadata: [
                "partner": "\(partner.id)", "candidates": "\(remaining)", "resumed": "\(checkpoint != nil)",
                "rate": "\(options.rate)", "concurrency": "\(concurrency)",
            ]
        )

        var frontier = Frontier(cursor: checkpoint?.cursor)
        var pacer = Pacer(interval: .nanoseconds(Int64((1e9 / options.rate).rounded(.up))))
        var lastSaved = ContinuousClock.now
        var ending = BackfillSummary.Ending.complete

        func save(complete: Bool) async {
            progress.elapsed = ContinuousClock.now - started
            publish(progress)
            do {
                if complete {
                    try await source.clearBackfillCheckpoint(partnerID: partner.id)
                } else if let cursor = frontier.cursor {
                    try await source.saveBackfillCheckpoint(
                        BackfillCheckpoint(
                            partnerID: partner.id,
                            cursor: cursor,
                            startedAt: startedAt,
                            updatedAt: clock.now(),
                            processed: progress.processed,
                            outcomes: progress.outcomes
                        )
                    )
                }
            } catch {
                logger.warning("saving the backfill checkpoint failed", metadata: ["error": "\(error)"])
            }
            lastSaved = ContinuousClock.now
        }

        await withTaskGroup(of: Handled.self) { group in
            var running = 0
            var page: [BackfillCandidate] = []
            var fetchAfter = checkpoint?.cursor
            var exhausted = false
            var retries: [Item] = []
            var pausedUntil: ContinuousClock.Instant?
            var launched = 0
            var firstStart: ContinuousClock.Instant?

            func finish(_ item: Item, outcome: String, called: Bool) {
                frontier.complete(item.sequence)
                progress.processed += 1
                progress.processedThisRun += 1
                if called { progress.callsThisRun += 1 }
                progress.outcomes[outcome, default: 0] += 1
                progress.elapsed = ContinuousClock.now - started
                publish(progress)
            }

            func handle(_ handled: Handled) {
                running -= 1
                switch handled {
                case .done(let item, let outcome, let called):
                    finish(item, outcome: outcome, called: called)
                case .retry(let item, let reason):
                    retries.append(item)
                    pausedUntil = ContinuousClock.now + options.retryPause
                    logger.debug("partner unavailable; pausing", metadata: ["reason": "\(reason.rawValue)"])
                }
                progress.elapsed = ContinuousClock.now - started
                publish(progress)
            }

            /// Waits for `deadline`, or less if a graceful shutdown begins; false when stopping.
            func wait(until deadline: ContinuousClock.Instant) async -> Bool {
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(until: deadline) }
                } catch {
                    return false
                }
                return !Self.stopping
            }

            producing: while !Self.stopping {
                if ContinuousClock.now - lastSaved >= options.checkpointInterval { await save(complete: false) }
                // A free call slot.
                while running >= concurrency, let handled = await group.next() { handle(handled) }
                if let until = pausedUntil, until > ContinuousClock.now {
                    if running > 0, let handled = await group.next() {
                        handle(handled)
                        continue
                    }
                    guard await wait(until: until) else { break }
                }
                // The next EC: one to try again first, else the next candidate.
                let item: Item
                if !retries.isEmpty {
                    item = retries.removeFirst()
                } else {
                    if let limit = options.limit, launched >= limit {
                        ending = .limit
                        break
                    }
                    if page.isEmpty, !exhausted {
                        do {
                            page = try await source.backfillCandidates(
                                query,
                                after: fetchAfter,
                                limit: options.pageSize
                            )
                            exhausted = page.count < options.pageSize
                            fetchAfter = page.last?.ecHash ?? fetchAfter
                            page.reverse()
                        } catch {
                            logger.warning("reading backfill candidates failed", metadata: ["error": "\(error)"])
                            pausedUntil = ContinuousClock.now + options.retryPause
                            continue
                        }
                    }
                    guard let candidate = page.popLast() else {
                        // Nothing left to start: wait for the calls in flight (which may hand back retries).
                        guard running > 0, let handled = await group.next() else { break producing }
                        handle(handled)
                        continue
                    }
                    item = Item(sequence: frontier.assign(candidate.ecHash), candidate: candidate)
                    launched += 1
                    // Kept out by its consent snapshot: handled at once, without taking a start slot.
                    if let excluded = consentExclusion(candidate, at: clock.now()) {
                        finish(item, outcome: excluded, called: false)
                        continue
                    }
                }
                // Its start slot.
                while let delay = pacer.delay(at: ContinuousClock.now) {
                    guard await wait(until: ContinuousClock.now + delay) else {
                        retries.insert(item, at: 0)
                        break producing
                    }
                }
                let startedAt = ContinuousClock.now
                firstStart = firstStart ?? startedAt
                progress.startsThisRun += 1
                progress.startSpan = startedAt - (firstStart ?? startedAt)
                running += 1
                group.addTask { await self.handle(item) }
            }
            // Stopping (or done): the calls in flight finish; ECs never started stay after the cursor.
            if Self.stopping || Task.isCancelled { ending = .interrupted }
            while let handled = await group.next() { handle(handled) }
            if ending == .complete, !retries.isEmpty { ending = .interrupted }
        }
        await save(complete: ending == .complete)
        logger.info(
            "backfill stopped",
            metadata: [
                "partner": "\(partner.id)", "ending": "\(ending.rawValue)", "processed": "\(progress.processedThisRun)",
                "calls": "\(progress.callsThisRun)",
            ]
        )
        return BackfillSummary(ending: ending, progress: progress)
    }

    private static var stopping: Bool { Task.isShuttingDownGracefully || Task.isCancelled }

    private func publish(_ progress: BackfillProgress) {
        current.withLock { $0 = progress }
    }

    /// The request a backfill makes for `candidate`: under its consent snapshot's signals,
    /// neither marking the EC seen nor replacing the snapshot.
    private static func request(for candidate: BackfillCandidate) -> OrganicRequest {
        var request = OrganicRequest(
            path: "/",
            edgeCookie: candidate.ecID,
            consent: .granted,
            consentStrings: candidate.consent?.strings ?? ConsentStrings()
        )
        request.fromBrowser = false
        return request
    }

    /// One EC through the kernel: plan (every rule), call, classify, write.
    private func handle(_ item: Item) async -> Handled {
        let report = await kernel.process(Self.request(for: item.candidate))
        if let result = report.results.first {
            var outcome = result.outcome.outcomeClass.rawValue
            if let write = result.write, write != .stored { outcome += "_\(write.rawValue)" }
            return .done(item, outcome: outcome, called: true)
        }
        let reason: SkipReason
        switch report.plan.requestSkip.map(Decision.skip) ?? report.plan.decision(for: partner.id) {
        case .skip(let skipped):
            reason = skipped
        case .dispatch, nil:
            // Planned but not sent: the budget, checked again at the moment of sending, was
            // spent (by organic traffic sharing it). The EC's call is counted in the window,
            // so trying again now would only be `rate_limited`.
            return .done(item, outcome: SkipReason.budget.rawValue, called: false)
        }
        switch reason {
        case .circuitOpen, .partnerPaused, .budget, .partnerBusy, .storeUnavailable:
            return .retry(item, reason)
        default:
            return .done(item, outcome: reason.rawValue, called: false)
        }
    }
}

/// The cursor of a run whose ECs finish out of order: the last EC hash before which every
/// EC started has finished.
struct Frontier {
    private(set) var cursor: String?
    private var next = 0
    private var confirmed = -1
    private var finished: Set<Int> = []
    private var hashes: [Int: String] = [:]

    init(cursor: String?) {
        self.cursor = cursor
    }

    /// Numbers the next EC (in candidate order).
    mutating func assign(_ ecHash: String) -> Int {
        hashes[next] = ecHash
        next += 1
        return next - 1
    }

    mutating func complete(_ sequence: Int) {
        finished.insert(sequence)
        while finished.remove(confirmed + 1) != nil {
            confirmed += 1
            cursor = hashes.removeValue(forKey: confirmed)
        }
    }
}

/// Spaces starts at least `interval` apart, measured from the previous actual start, so any
/// window of one second holds at most `1 s / interval` starts however late a start was.
struct Pacer {
    let interval: Duration
    private var last: ContinuousClock.Instant?

    init(interval: Duration) {
        self.interval = interval
    }

    /// `nil` when a start may happen at `now` (and counts it); else how long to wait.
    mutating func delay(at now: ContinuousClock.Instant) -> Duration? {
        if let last, now < last + interval { return last + interval - now }
        last = now
        return nil
    }
}
