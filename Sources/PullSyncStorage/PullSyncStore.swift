public import PullSyncKernel
public import ServiceLifecycle

/// Where pullsync keeps its state: the identity graph, the rate limiter with its call leases
/// and shared budgets, the scan `pullsync backfill` needs, the opt-out outbox, and the
/// EC-issuing secret.
///
/// The SQLite (`PullSyncSQLite`), PostgreSQL (`PullSyncPostgres`) and in-memory (``MemoryStore``)
/// stores conform. A store is also the `Service` that keeps it running (a connection pool, the
/// sweep of expired rows) and closes it at the end: run it in the same `ServiceGroup`, listed
/// *before* the services that use it, since a group shuts down in reverse order and the store
/// must outlive their last writes. ``PullSync`` does this for you.
public protocol PullSyncStore: IdentityGraph, RateLimiter, BackfillSource, OptOutOutbox, Service {
    /// The EC-issuing secret kept in the store, created on first use, so that restarts and
    /// every node sharing the store agree (used when `PULLSYNC_EC_SECRET` is not set).
    func ecSecret() async throws -> [UInt8]

    /// One bounded batch of retention: deletes at most `limit` ECs not seen since
    /// `ecsSeenBefore` (with their UIDs) and at most `limit` UIDs (and revocation marks) not
    /// refreshed since `uidsSyncedBefore`. Returns how many of each; a full batch means there may
    /// be more (``RetentionService`` calls it again).
    func forget(uidsSyncedBefore: Timestamp, ecsSeenBefore: Timestamp, limit: Int) async throws -> RetentionBatch
}

/// What one batch of ``PullSyncStore/forget(uidsSyncedBefore:ecsSeenBefore:limit:)`` deleted.
public struct RetentionBatch: Sendable, Hashable {
    /// UIDs (and revocation marks) past the maximum age.
    public var uids: Int
    /// ECs past the idle period, each with its UIDs.
    public var ecs: Int

    /// Creates a batch's counts.
    public init(uids: Int, ecs: Int) {
        self.uids = uids
        self.ecs = ecs
    }
}

extension PullSyncStore {
    /// Runs the store around `body` (for a command that uses the store once and exits), then
    /// stops it, which closes it.
    public func whileRunning<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.run() }
            defer { group.cancelAll() }
            return try await body()
        }
    }
}

/// 32 random bytes for a new EC-issuing secret.
package func randomECSecret() -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
}
