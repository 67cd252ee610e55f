import Synchronization

/// What ``PullDispatcher/submit(_:)`` did with a request. It never waits to find out more.
public enum SubmitResult: Sendable, Hashable {
    /// Queued for pull sync.
    case enqueued
    /// Skipped before queueing (route, EC format, request-level consent). A denial with a
    /// well-formed EC also queues the EC's withdrawal.
    case skipped(SkipReason)
    /// The queue was full: dropped and counted, the page unaffected.
    case dropped
    /// The dispatcher is shutting down or has stopped.
    case notRunning
}

/// Runs pull sync behind a bounded queue, after the host's response has gone.
///
/// ``submit(_:)`` never suspends: it runs the cheap checks and enqueues, dropping (and
/// counting) what doesn't fit. ``run()`` processes the queue with at most
/// `maxInFlightCalls` calls in flight across all requests and a sliding window of
/// `perRequestConcurrency` per request, until ``beginShutdown()`` or cancellation. On
/// shutdown it stops taking work, drops what is queued, lets calls in flight finish within
/// `shutdownGracePeriod` (storing what they return), then cancels the rest.
///
/// A request that denies consent (the host's decision, GPC, an opt-out) and carries a
/// well-formed EC queues that EC's withdrawal on a queue of its own, so pulls never delay it;
/// withdrawals still queued at shutdown are made within the grace period.
public final class PullDispatcher: Sendable {
    fileprivate struct Job: Sendable {
        var request: OrganicRequest
        /// The EC the submission gate accepted (so the worker doesn't gate again).
        var edgeCookie: EdgeCookie
    }

    private struct State {
        var shuttingDown = false
        var started = false
    }

    /// The kernel that decides and calls: the latest one ``reload(_:)`` put in place.
    public var kernel: PullKernel { current.withLock { $0 } }
    private let current: Mutex<PullKernel>
    private let queue: AsyncStream<Job>
    private let queueInput: AsyncStream<Job>.Continuation
    /// Jobs in the queue, and how many it holds: a request the gate passes while it is full is
    /// dropped at once, so the host needn't hand it over (for a page, a body written in one go).
    private let queued = Atomic(0)
    private let queueCapacity: Int
    private let shutdownSignal: AsyncStream<Void>
    private let shutdownInput: AsyncStream<Void>.Continuation
    private let callSlots: AsyncSemaphore
    private let requestSlots: AsyncSemaphore
    private let state = Mutex(State())
    private let counters = Mutex(DispatcherStatistics())
    private let recentlyIssued = RecentECHashes(capacity: 65_536)
    private let recentlyWithdrawn = RecentECHashes(capacity: 65_536)
    private let withdrawals: AsyncStream<EdgeCookie>
    private let withdrawalInput: AsyncStream<EdgeCookie>.Continuation
    private let sleep: @Sendable (Duration) async -> Void
    private let governor: (any LoadGovernor)?
    private let executor: (any TaskExecutor)?

    /// - Parameters:
    ///   - kernel: the kernel that decides and calls.
    ///   - governor: when to give way to pages; `nil` (the default) never does.
    ///   - executor: where the queue is read and each request decided and called; `nil` (the
    ///     default) runs them on Swift's global executor, beside the host's own tasks.
    ///     `PullSyncService` passes one whose threads run below the pages' priority.
    ///   - sleep: waits out the shutdown grace period, returning early when cancelled (injected
    ///     by tests to end the grace period on cue). Default `Task.sleep(for:)`.
    public init(
        kernel: PullKernel,
        governor: (any LoadGovernor)? = nil,
        executor: (any TaskExecutor)? = nil,
        sleep: @escaping @Sendable (Duration) async -> Void = { try? await Task.sleep(for: $0) }
    ) {
        self.sleep = sleep
        self.governor = governor
        self.executor = executor
        self.current = Mutex(kernel)
        queueCapacity = kernel.configuration.queueCapacity
        (queue, queueInput) = AsyncStream.makeStream(
            of: Job.self,
            bufferingPolicy: .bufferingOldest(kernel.configuration.queueCapacity)
        )
        (withdrawals, withdrawalInput) = AsyncStream.makeStream(
            of: EdgeCookie.self,
            bufferingPolicy: .bufferingOldest(kernel.configuration.queueCapacity)
        )
        (shutdownSignal, shutdownInput) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        callSlots = AsyncSemaphore(permits: kernel.configuration.maxInFlightCalls)
        requestSlots = AsyncSemaphore(permits: kernel.configuration.maxInFlightCalls)
    }

    /// Hands one organic request to pull sync. Never suspends, never throws, never fails the page.
    /// The same as ``prepare(_:)`` followed at once by ``PreparedSubmission/handOver()``.
    @discardableResult
    public func submit(_ request: OrganicRequest) -> SubmitResult {
        prepare(request).handOver()
    }

    /// The first half of ``submit(_:)``, for a host that serves the page in between: runs the
    /// submission gate (route, EC, the fresh-EC memo, request-level consent) now, and leaves the
    /// rest (queueing the request, or the withdrawal a denial asks for) to
    /// ``PreparedSubmission/handOver()``, called once the response has gone.
    ///
    /// A request skipped at the gate is counted here, and its `needsHandOver` is `false` unless
    /// it queues a withdrawal: the host then has nothing to wait for, which keeps the most common
    /// page view (a returning browser whose UIDs are all fresh) off pull sync's path entirely.
    /// So is a request that passes while the queue is full: it is dropped and counted here (under
    /// overload, most of them), and its page is written as if pull sync weren't there.
    /// Never suspends.
    public func prepare(_ request: OrganicRequest) -> PreparedSubmission {
        prepare(request, facts: nil)
    }

    /// ``prepare(_:)`` for a request whose route was found organic, EC parsed and (maybe)
    /// request-level consent decided by the host already, with this dispatcher's kernel.
    package func prepare(_ request: OrganicRequest, facts: GateFacts?) -> PreparedSubmission {
        let kernel = self.kernel
        let admission = kernel.admission(request, memo: facts?.freshMemoConsulted != true, facts: facts)
        switch admission.result {
        case .skip(let reason):
            countSkip(reason, kernel: kernel)
            return PreparedSubmission(dispatcher: self, kernel: kernel, work: .skipped(reason, admission.withdrawing))
        case .pass(let edgeCookie):
            if isQueueFull {
                // Still known as issued here: the EC's next request creates its root entry.
                if request.ecIssuedOnThisRequest { recentlyIssued.insert(edgeCookie.hashKey) }
                count(.dropped, kernel: kernel)
                return PreparedSubmission(dispatcher: self, kernel: kernel, work: .dropped)
            }
            return PreparedSubmission(dispatcher: self, kernel: kernel, work: .pull(Job(request: request, edgeCookie: edgeCookie)))
        }
    }

    /// Whether the queue is full now, so that a request the gate passes would be dropped: a host
    /// that runs the gate after its response (to keep it off the page's time) can run it before
    /// instead, and write the page as it is, with nothing to hand over.
    package var isQueueFull: Bool { queued.load(ordering: .relaxed) >= queueCapacity }

    /// The gate's `fresh_memo` skip for a host that read a well-formed EC in place: whether
    /// `kernel`'s memo holds for the EC whose hash is `ecHash` under these signals. A skip is
    /// counted as ``prepare(_:)`` counts it; the host then has nothing to hand over. With the
    /// memo not holding, the host prepares the request as usual (``GateFacts/freshMemoConsulted``).
    package func skipsFreshMemo(
        _ kernel: PullKernel,
        ecHash: Substring,
        consent: ConsentDecision,
        strings: ConsentStrings
    ) -> Bool {
        guard kernel.freshMemoHolds(ecHash: ecHash, consent: consent, strings: strings) else { return false }
        countSkip(.freshMemo, kernel: kernel)
        return true
    }

    private func countSkip(_ reason: SkipReason, kernel: PullKernel) {
        kernel.metrics.requestSkip(reason)
        count(.skipped(reason), kernel: kernel)
    }

    /// Counts what became of a submission, in the metrics and the statistics.
    private func count(_ result: SubmitResult, kernel: PullKernel) {
        kernel.metrics.submission(result)
        counters.withLock { $0.count(result) }
    }

    /// Queues a request that passed the gate.
    fileprivate func enqueue(_ job: Job, kernel: PullKernel) -> SubmitResult {
        var job = job
        // An EC this process issued moments ago is known even before its root is written.
        if job.request.ecIssuedOnThisRequest {
            recentlyIssued.insert(job.edgeCookie.hashKey)
        } else if recentlyIssued.contains(job.edgeCookie.hashKey) {
            job.request.ecIssuedOnThisRequest = true
        }
        // Counted before it can be taken, so the count is never below the queue's.
        queued.add(1, ordering: .relaxed)
        let result: SubmitResult =
            switch queueInput.yield(job) {
            case .enqueued: .enqueued
            case .terminated: .notRunning
            case .dropped: .dropped
            @unknown default: .dropped
            }
        if result != .enqueued { queued.subtract(1, ordering: .relaxed) }
        count(result, kernel: kernel)
        return result
    }

    fileprivate func queueWithdrawal(_ edgeCookie: EdgeCookie) {
        guard !recentlyWithdrawn.contains(edgeCookie.hashKey) else { return }
        switch withdrawalInput.yield(edgeCookie) {
        case .enqueued:
            break
        case .dropped, .terminated:
            // The browser's next denied page view tries again.
            kernel.metrics.withdrawal("dropped")
        @unknown default:
            kernel.metrics.withdrawal("dropped")
        }
    }

    /// Processes the queue until shutdown completes or the task is cancelled. A dispatcher runs
    /// once: a second call logs an error and returns at once.
    public func run() async {
        let alreadyStarted = state.withLock { state in
            defer { state.started = true }
            return state.started
        }
        // A second run (say, a restarted service) would compete for one queue: refuse it, loudly.
        guard !alreadyStarted else {
            kernel.logger.error("PullDispatcher.run() called a second time; ignoring it")
            return
        }
        let grace = kernel.configuration.shutdownGracePeriod
        await withTaskGroup(of: Void.self) { group in
            // The queues' readers run where the requests do: a hand-over wakes a thread of the
            // executor's, not one of those that run the pages' tasks.
            group.addTask(executorPreference: executor) {
                // Both queues drain at shutdown; the grace period bounds them together.
                async let pulls: Void = self.consume()
                async let withdrawals: Void = self.consumeWithdrawals()
                _ = await (pulls, withdrawals)
            }
            group.addTask {
                // Ends `grace` after shutdown begins; the first child to end cancels the other.
                for await _ in self.shutdownSignal { break }
                guard !Task.isCancelled else { return }
                await self.sleep(grace)
            }
            await group.next()
            group.cancelAll()
        }
        queueInput.finish()
        withdrawalInput.finish()
    }

    /// Puts `registry` in place of the running one, atomically: requests submitted from now on
    /// are decided against it; requests already being processed finish on the kernel they
    /// started on. What carries over is described at ``PullKernel/reloaded(with:)``. Returns
    /// the new kernel.
    @discardableResult
    package func reload(_ registry: PartnerRegistry) -> PullKernel {
        current.withLock { kernel in
            kernel = kernel.reloaded(with: registry)
            return kernel
        }
    }

    /// Stops taking work; calls in flight get the grace period to finish. Safe to call more than once.
    public func beginShutdown() {
        let first = state.withLock { state in
            defer { state.shuttingDown = true }
            return !state.shuttingDown
        }
        guard first else { return }
        queueInput.finish()
        withdrawalInput.finish()
        shutdownInput.yield()
        shutdownInput.finish()
    }

    /// Whether shutdown has begun.
    package var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    /// Counts since start, for tests, health and the CLI summary.
    package var statistics: DispatcherStatistics { counters.withLock { $0 } }

    /// Withdraws one EC at a time: one read (and, for an EC not yet withdrawn, one write) each.
    private func consumeWithdrawals() async {
        for await edgeCookie in withdrawals {
            let result = await kernel.withdrawDenied(
                edgeCookie,
                issuedHere: recentlyIssued.contains(edgeCookie.hashKey)
            )
            if result == "withdrawn" || result == "already_withdrawn" { recentlyWithdrawn.insert(edgeCookie.hashKey) }
            counters.withLock { $0.withdrawals[result, default: 0] += 1 }
        }
    }

    private func consume() async {
        // Submissions counted when the last job was taken: more since means pages are arriving.
        var submittedThen = 0
        await withDiscardingTaskGroup { group in
            for await job in queue {
                queued.subtract(1, ordering: .relaxed)
                if isShuttingDown {
                    counters.withLock { $0.droppedAtShutdown += 1 }
                    continue
                }
                if let governor {
                    let submitted = counters.withLock { $0.submitted }
                    if submitted > submittedThen, await governor.waitForRoom() {
                        counters.withLock { $0.gaveWay += 1 }
                    }
                    submittedThen = submitted
                }
                do { try await requestSlots.acquire() } catch { break }
                // Shutdown may have begun while this job waited for room or a slot: it has not
                // started, so it is dropped like the jobs still queued.
                if isShuttingDown {
                    requestSlots.release()
                    counters.withLock { $0.droppedAtShutdown += 1 }
                    continue
                }
                // A request is planned and called on one kernel, whatever reloads happen meanwhile.
                let kernel = self.kernel
                group.addTask(executorPreference: self.executor) {
                    defer { self.requestSlots.release() }
                    let plan = await kernel.plan(job.request, gated: job.edgeCookie)
                    let results = await kernel.execute(
                        plan,
                        globalSlots: self.callSlots,
                        shouldStartMore: { [self] in !self.isShuttingDown }
                    )
                    self.counters.withLock { $0.record(plan: plan, results: results) }
                }
            }
        }
    }
}

/// A request that went through ``PullDispatcher/prepare(_:)``'s gate, waiting for the page to go.
public struct PreparedSubmission: Sendable {
    fileprivate enum Work: Sendable {
        case skipped(SkipReason, EdgeCookie?)
        case pull(PullDispatcher.Job)
        /// Passed the gate while the queue was full: dropped and counted already.
        case dropped
    }

    fileprivate let dispatcher: PullDispatcher
    fileprivate let kernel: PullKernel
    fileprivate let work: Work

    /// Why the gate skipped the request; `nil` when it passed (and is queued by ``handOver()``,
    /// or was dropped at once because the queue was full).
    public var skipReason: SkipReason? {
        if case .skipped(let reason, _) = work { reason } else { nil }
    }

    /// Whether ``handOver()`` has anything to do: the request passed the gate and the queue had
    /// room, or its denial withdraws its EC. When `false` the host may drop this value.
    public var needsHandOver: Bool {
        switch work {
        case .skipped(_, let withdrawing): withdrawing != nil
        case .pull: true
        case .dropped: false
        }
    }

    /// Queues what the gate let through (the request, or the EC's withdrawal). Call it once,
    /// after the response has been handed over; never suspends.
    @discardableResult
    public func handOver() -> SubmitResult {
        switch work {
        case .skipped(let reason, let withdrawing):
            if let withdrawing { dispatcher.queueWithdrawal(withdrawing) }
            return .skipped(reason)
        case .pull(let job):
            return dispatcher.enqueue(job, kernel: kernel)
        case .dropped:
            return .dropped
        }
    }
}

/// Running totals of a dispatcher.
package struct DispatcherStatistics: Sendable, Hashable {
    /// Requests queued.
    package var enqueued = 0
    /// Requests skipped before queueing.
    package var skippedAtSubmit = 0
    /// Requests dropped because the queue was full.
    package var dropped = 0
    /// Requests refused because the dispatcher was not running.
    package var notRunning = 0
    /// Queued requests dropped because shutdown began before they started.
    package var droppedAtShutdown = 0
    /// Requests fully processed.
    package var processed = 0
    /// Calls made, and their outcomes by class name.
    package var calls = 0
    package var outcomes: [String: Int] = [:]
    /// UIDs written.
    package var stored = 0
    /// Withdrawals of denied requests' ECs, by result (`withdrawn`, `already_withdrawn`,
    /// `unknown_ec`, `error`).
    package var withdrawals: [String: Int] = [:]

    /// Times the dispatcher waited for its ``LoadGovernor`` before taking a request.
    package var gaveWay = 0

    /// Requests submitted, whatever became of them.
    var submitted: Int { enqueued + skippedAtSubmit + dropped + notRunning }

    mutating func count(_ result: SubmitResult) {
        switch result {
        case .enqueued: enqueued += 1
        case .skipped: skippedAtSubmit += 1
        case .dropped: dropped += 1
        case .notRunning: notRunning += 1
        }
    }

    /// Skips by reason: request-level ones once per request, partner-level ones per partner.
    package var skips: [String: Int] = [:]

    mutating func record(plan: RequestPlan, results: [CallResult]) {
        processed += 1
        if let reason = plan.requestSkip { skips[reason.rawValue, default: 0] += 1 }
        for decision in plan.decisions {
            if case .skip(let reason) = decision.decision { skips[reason.rawValue, default: 0] += 1 }
        }
        calls += results.count
        for result in results {
            outcomes[result.outcome.className, default: 0] += 1
            if result.write == .stored { stored += 1 }
        }
    }
}
