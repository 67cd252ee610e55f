public import CoreMetrics
public import Logging
public import PullSyncKernel
public import PullSyncStorage
public import ServiceLifecycle
import Synchronization

/// How opt-outs are delivered (see ``OptOutService``).
public struct OptOutDelivery: Sendable, Hashable {
    /// How often the outbox is read for what is due. Default 1 s.
    public var interval: Duration
    /// Tasks read per pass at most. Default 100.
    public var batchSize: Int
    /// Opt-out calls in flight at once. Default 8.
    public var concurrency: Int
    /// The first retry's delay, doubled for each attempt after it. Default 2 s.
    public var backoff: Duration
    /// The longest delay between two attempts. Default one hour.
    public var maxBackoff: Duration
    /// How long a task is tried for, from the withdrawal or revocation; then it is abandoned
    /// (counted as `expired`). Default 7 days.
    public var maxAge: Duration
    /// Whether opt-outs are sent at all (they still queue in the store). Withdrawals the store
    /// refused are tried again either way. Default `true`.
    public var enabled: Bool

    /// Creates the settings; every default is the one documented on its property.
    public init(
        interval: Duration = .seconds(1),
        batchSize: Int = 100,
        concurrency: Int = 8,
        backoff: Duration = .seconds(2),
        maxBackoff: Duration = .seconds(3600),
        maxAge: Duration = .seconds(7 * 86_400),
        enabled: Bool = true
    ) {
        // Out-of-range values are brought in range: no retry is due before it was made.
        self.interval = max(interval, .milliseconds(10))
        self.batchSize = max(1, batchSize)
        self.concurrency = max(1, concurrency)
        self.backoff = max(backoff, .milliseconds(10))
        self.maxBackoff = max(maxBackoff, self.backoff)
        self.maxAge = max(maxAge, .zero)
        self.enabled = enabled
    }

    /// The delay before the attempt after `attempts` failed ones: ``backoff`` doubled each
    /// time, at most ``maxBackoff``.
    public func delay(afterAttempts attempts: Int) -> Duration {
        var delay = backoff
        for _ in 0..<min(max(0, attempts - 1), 40) where delay < maxBackoff { delay *= 2 }
        return min(delay, maxBackoff)
    }
}

/// Tells partners of withdrawals and revocations: delivers the store's opt-out outbox
/// (`OptOutOutbox`) with the kernel's rules for sending (URL safety, circuit,
/// pause, budget), and tries again the withdrawals the store refused while it was down.
///
/// Each pass (every ``OptOutDelivery/interval``): the pending withdrawals, then up to
/// `batchSize` due tasks, `concurrency` at a time. An acknowledged task (2xx, 404, 410) is never
/// sent again; one that can't succeed is abandoned; the others are retried with backoff until
/// ``OptOutDelivery/maxAge``. A graceful shutdown starts no new call and lets those in flight
/// finish and be recorded; what is left stays in the store for the next start.
///
/// Counted in `pullsync_optouts_total{partner, result}` (`acknowledged`, `retry`, `failed`,
/// `expired`); the outbox's depth is `pullsync_optout_outbox_pending`.
public final class OptOutService: Service, Sendable {
    private let store: any OptOutOutbox
    private let kernel: @Sendable () -> PullKernel
    private let delivery: OptOutDelivery
    private let clock: any WallClock
    private let factory: any MetricsFactory
    private let pending: Gauge
    private let logger: Logger
    private let warning = ThrottledWarning()
    /// Settlements the store refused, kept so an acknowledged task is not sent again meanwhile.
    private let unrecorded = Mutex<[OptOutTask: OptOutSettlement]>([:])

    /// - Parameters:
    ///   - store: the outbox.
    ///   - kernel: the kernel to send with, read for each pass (a reload replaces it).
    ///   - delivery: pace, retries and their limit.
    ///   - clock: the time tasks are due and aged at. Default the system clock.
    ///   - metricsFactory: where the counts go.
    ///   - logger: where failures are logged (throttled) and abandoned tasks noted.
    public init(
        store: any OptOutOutbox,
        kernel: @escaping @Sendable () -> PullKernel,
        delivery: OptOutDelivery = OptOutDelivery(),
        clock: any WallClock = SystemWallClock(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger
    ) {
        self.store = store
        self.kernel = kernel
        self.delivery = delivery
        self.clock = clock
        self.factory = metricsFactory
        self.pending = Gauge(label: "pullsync_optout_outbox_pending", factory: metricsFactory)
        self.logger = logger
    }

    /// Delivers every `interval` until graceful shutdown.
    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await deliverDue()
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.delivery.interval) }
            } catch {
                break
            }
        }
    }

    /// What one pass did.
    public struct Pass: Sendable, Hashable {
        /// Withdrawals tried again and recorded this time.
        public var withdrawals = 0
        /// Opt-out calls made, by result (`acknowledged`, `retry`, `failed`, `expired`).
        public var results: [String: Int] = [:]
    }

    /// One pass, at once: what ``run()`` does every interval.
    @discardableResult
    public func deliverDue() async -> Pass {
        let kernel = self.kernel()
        var pass = Pass()
        pass.withdrawals = await kernel.retryPendingWithdrawals()
        guard delivery.enabled else { return pass }
        // Settlements the store refused earlier go first.
        for (task, settlement) in unrecorded.withLock({ $0 }) { await record(task, settlement) }
        let now = clock.now()
        let due: [OptOutTask]
        do {
            // Claimed for longer than any attempt takes (a partner's timeout is at most 30 s).
            due = try await store.claimOptOuts(at: now, limit: delivery.batchSize, until: now + .seconds(120))
        } catch {
            warning.warning("reading the opt-out outbox failed", metadata: ["error": "\(error)"], to: logger)
            return pass
        }
        let waiting = unrecorded.withLock { Set($0.keys.map { TaskKey($0) }) }
        let tasks = due.filter { !waiting.contains(TaskKey($0)) }
        let unsent = await withTaskGroup(of: (OptOutTask, String).self) { group in
            var queue = tasks[...]
            var running = 0
            func startNext() -> Bool {
                guard !Task.isShuttingDownGracefully, !Task.isCancelled, let task = queue.popFirst() else { return false }
                group.addTask { (task, await self.deliver(task, kernel: kernel)) }
                return true
            }
            while running < delivery.concurrency, startNext() { running += 1 }
            for await (_, result) in group {
                pass.results[result, default: 0] += 1
                _ = startNext()
            }
            return Array(queue)
        }
        // Shutting down: what was claimed but not sent is due again at once (for the next start).
        for task in unsent { await record(task, .retry(at: now)) }
        if let count = try? await store.pendingOptOuts() { pending.record(count) }
        return pass
    }

    /// Sends one task and records what became of it; returns the metric's result.
    private func deliver(_ task: OptOutTask, kernel: PullKernel) async -> String {
        let attempt = await kernel.sendOptOut(task)
        let now = clock.now()
        var result = attempt.result
        let settlement: OptOutSettlement
        switch attempt {
        case .acknowledged:
            settlement = .acknowledged
        case .failed(let reason):
            logger.warning(
                "a partner's opt-out can't be delivered; abandoned",
                metadata: ["source_domain": "\(task.sourceDomain)", "reason": "\(reason)"]
            )
            settlement = .abandoned
        case .retry(let reason, let after):
            if now - task.enqueuedAt >= delivery.maxAge {
                logger.warning(
                    "a partner's opt-out was tried for too long; abandoned",
                    metadata: ["source_domain": "\(task.sourceDomain)", "reason": "\(reason)", "attempts": "\(task.attempts + 1)"]
                )
                result = "expired"
                settlement = .abandoned
            } else {
                // The partner's Retry-After counts, within the longest backoff (its pause holds
                // the calls back anyway).
                let wait = min(max(after ?? .zero, delivery.delay(afterAttempts: task.attempts + 1)), delivery.maxBackoff)
                settlement = .retry(at: now + wait)
            }
        }
        let partner = kernel.registry.partners.first { $0.sourceDomain == task.sourceDomain }?.id ?? task.sourceDomain
        Counter(label: "pullsync_optouts_total", dimensions: [("partner", partner), ("result", result)], factory: factory)
            .increment()
        await record(task, settlement)
        return result
    }

    /// Writes a settlement, or keeps it to write on the next pass.
    private func record(_ task: OptOutTask, _ settlement: OptOutSettlement) async {
        do {
            try await store.settleOptOut(task, settlement, at: clock.now())
            _ = unrecorded.withLock { $0.removeValue(forKey: task) }
        } catch {
            unrecorded.withLock { $0[task] = settlement }
            warning.warning("recording an opt-out failed; trying again", metadata: ["error": "\(error)"], to: logger)
        }
    }

    /// A task's identity in the outbox (its attempts count changes).
    private struct TaskKey: Hashable {
        var sourceDomain: String
        var ecHash: String
        init(_ task: OptOutTask) {
            sourceDomain = task.sourceDomain
            ecHash = task.ecHash
        }
    }
}
