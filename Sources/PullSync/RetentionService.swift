public import CoreMetrics
public import Logging
public import PullSyncKernel
public import PullSyncStorage
public import ServiceLifecycle

/// How long the store keeps what pull sync learned. A partner UID not refreshed within the
/// kernel's `maxUIDAge` (default 90 days) is deleted, as is an EC not seen for ``ecIdleAge``
/// (with its UIDs). Swept by ``RetentionService``.
public struct Retention: Sendable, Hashable {
    /// An EC not seen for this long is deleted with its UIDs. Default 395 days (13 months, the
    /// TCF re-consent period). "Seen" is recorded at most once a day per EC.
    public var ecIdleAge: Duration
    /// How often the sweep runs. Default one hour.
    public var interval: Duration
    /// Rows deleted per statement (ECs, then UIDs): the sweep's memory and lock footprint. Default 1,000.
    public var batchSize: Int
    /// Whether the sweep runs at all. Default `true`.
    public var enabled: Bool

    /// Creates a policy; every default is the one documented on its property.
    public init(
        ecIdleAge: Duration = .seconds(395 * 86_400),
        interval: Duration = .seconds(3600),
        batchSize: Int = 1000,
        enabled: Bool = true
    ) {
        self.ecIdleAge = ecIdleAge
        self.interval = interval
        self.batchSize = max(1, batchSize)
        self.enabled = enabled
    }
}

/// Deletes what ``Retention`` says is too old, every `interval`, in bounded batches, until a
/// batch comes back short. Counted in `pullsync_retention_deleted_total{kind}` (`uid`, `ec`).
public struct RetentionService: Service {
    private let store: any PullSyncStore
    private let retention: Retention
    private let maxUIDAge: Duration
    private let clock: any WallClock
    private let deletedUIDs: Counter
    private let deletedECs: Counter
    private let logger: Logger

    /// - Parameters:
    ///   - store: the store to sweep.
    ///   - retention: the idle period, interval and batch size.
    ///   - maxUIDAge: the oldest a UID may be (the kernel's `maxUIDAge`, which EIDs honour too).
    ///   - clock: the time sweeps are measured at. Default the system clock.
    ///   - metricsFactory: where `pullsync_retention_deleted_total` goes.
    ///   - logger: where sweeps and their failures are logged.
    public init(
        store: any PullSyncStore,
        retention: Retention,
        maxUIDAge: Duration,
        clock: any WallClock = SystemWallClock(),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger
    ) {
        self.store = store
        self.retention = retention
        self.maxUIDAge = maxUIDAge
        self.clock = clock
        deletedUIDs = Counter(label: "pullsync_retention_deleted_total", dimensions: [("kind", "uid")], factory: metricsFactory)
        deletedECs = Counter(label: "pullsync_retention_deleted_total", dimensions: [("kind", "ec")], factory: metricsFactory)
        self.logger = logger
    }

    /// Sweeps every `interval` until graceful shutdown.
    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: retention.interval) }
            } catch {
                break
            }
            do {
                let swept = try await sweep(at: clock.now())
                if swept.uids + swept.ecs > 0 {
                    logger.info("retention sweep", metadata: ["uids_deleted": "\(swept.uids)", "ecs_deleted": "\(swept.ecs)"])
                }
            } catch {
                // The store may be down; the next round tries again.
                logger.warning("retention sweep failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// One sweep at `now`: batches until one deletes fewer than the batch size of each kind, or
    /// graceful shutdown begins. Returns the totals.
    @discardableResult
    public func sweep(at now: Timestamp) async throws -> RetentionBatch {
        var total = RetentionBatch(uids: 0, ecs: 0)
        while true {
            let batch = try await store.forget(
                uidsSyncedBefore: now - maxUIDAge,
                ecsSeenBefore: now - retention.ecIdleAge,
                limit: retention.batchSize
            )
            deletedUIDs.increment(by: Int64(batch.uids))
            deletedECs.increment(by: Int64(batch.ecs))
            total.uids += batch.uids
            total.ecs += batch.ecs
            let full = batch.uids >= retention.batchSize || batch.ecs >= retention.batchSize
            if !full || Task.isShuttingDownGracefully || Task.isCancelled { return total }
        }
    }
}
