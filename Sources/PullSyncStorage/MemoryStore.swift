public import PullSyncKernel
import ServiceLifecycle

/// A store in process memory (`memory:`): exact, and lost on exit. It answers as every other
/// store must, so it is the reference the store tests compare against.
public final class MemoryStore: PullSyncStore, CombinedStore {
    /// The identity graph (and backfill scan) it keeps.
    package let graph: InMemoryIdentityGraph
    /// The rate-limit windows it keeps.
    package let rateLimiter: InMemoryRateLimiter
    // Lives as long as the store: one random secret per store.
    private let secret = randomECSecret()

    package init(graph: InMemoryIdentityGraph = InMemoryIdentityGraph(), rateLimiter: InMemoryRateLimiter = InMemoryRateLimiter()) {
        self.graph = graph
        self.rateLimiter = rateLimiter
    }

    /// An empty store, or one holding `records` (for tests and benchmarks).
    public convenience init(records: [ECRecord] = []) {
        self.init(graph: InMemoryIdentityGraph(records: records))
    }

    public func ecSecret() async throws -> [UInt8] { secret }

    /// Nothing to keep running: returns when the group shuts down.
    public func run() async throws {
        try? await gracefulShutdown()
    }

    // MARK: IdentityGraph

    public func record(ecHash: String) async throws -> ECRecord? { try await graph.record(ecHash: ecHash) }

    public func createRoot(for edgeCookie: EdgeCookie, at now: Timestamp, consent: ConsentSnapshot?) async throws
        -> ECRecord
    {
        try await graph.createRoot(for: edgeCookie, at: now, consent: consent)
    }

    public func write(_ writes: [UIDWrite], ecHash: String) async throws -> [WriteResult] {
        try await graph.write(writes, ecHash: ecHash)
    }

    /// A write is in memory: nothing worth a turn of the scheduler to share.
    public var writeIsRoundTrip: Bool { graph.writeIsRoundTrip }

    /// Creates the root entry and, only when this created it, counts `requests` (see
    /// ``CombinedStore/createRoot(for:at:consent:admitting:lease:)``). Leases are not kept.
    public func createRoot(
        for edgeCookie: EdgeCookie,
        at now: Timestamp,
        consent: ConsentSnapshot?,
        admitting requests: [RateLimitRequest],
        lease: CallLease?
    ) async throws -> (record: ECRecord, admissions: [LeasedAdmission]?) {
        let (record, created) = graph.createRootIfAbsent(for: edgeCookie, at: now, consent: consent)
        guard created else { return (record, nil) }
        return (record, Self.leased(try await rateLimiter.acquire(requests, at: now)))
    }

    /// It counts due calls with the record.
    public var countsDueCalls: Bool { true }

    /// Reads the record and counts its due partners' first calls (see
    /// ``CombinedStore/record(ecHash:admittingDue:limit:lease:at:)``). Leases are not kept.
    public func record(
        ecHash: String,
        admittingDue calls: [DueCall],
        limit: Int,
        lease: DueLease?,
        at now: Timestamp
    ) async throws -> (record: ECRecord?, admissions: [LeasedAdmission?]) {
        let record = try await graph.record(ecHash: ecHash)
        let rateLimiter = rateLimiter
        let admissions = await Self.admissions(of: calls, in: record, limit: limit, at: now) { request in
            rateLimiter.acquire(request, at: now)
        }
        return (record, admissions)
    }

    /// Takes back one call counted at `now` under each key.
    public func uncount(_ keys: [RateLimitKey], at now: Timestamp, holder: String?) async throws {
        rateLimiter.uncount(keys, at: now)
    }

    /// Writes; there are no shared leases to give back.
    public func write(
        _ writes: [UIDWrite],
        ecHash: String,
        releasing leaseKeys: [RateLimitKey],
        holder: String
    ) async throws -> [WriteResult] {
        try await graph.write(writes, ecHash: ecHash)
    }

    /// Withdraws the EC (see ``IdentityGraph/withdraw(ecHash:at:notifying:)``).
    public func withdraw(ecHash: String, at now: Timestamp, notifying: [String]) async throws -> Bool {
        try await graph.withdraw(ecHash: ecHash, at: now, notifying: notifying)
    }

    /// Revokes partners for the EC (see ``IdentityGraph/revoke(_:ecHash:at:notifying:)``).
    public func revoke(_ sourceDomains: [String], ecHash: String, at now: Timestamp, notifying: [String]) async throws
        -> [String]
    {
        try await graph.revoke(sourceDomains, ecHash: ecHash, at: now, notifying: notifying)
    }

    /// Records that the EC was seen at `now`, and its new consent snapshot if given.
    public func markSeen(ecHash: String, at now: Timestamp, consent: ConsentSnapshot?) async throws {
        try await graph.markSeen(ecHash: ecHash, at: now, consent: consent)
    }

    /// One bounded batch of retention (see ``PullSyncStore/forget(uidsSyncedBefore:ecsSeenBefore:limit:)``).
    public func forget(uidsSyncedBefore: Timestamp, ecsSeenBefore: Timestamp, limit: Int) async throws -> RetentionBatch {
        graph.forget(uidsSyncedBefore: uidsSyncedBefore, ecsSeenBefore: ecsSeenBefore, limit: limit)
    }

    // MARK: OptOutOutbox

    /// Claims up to `limit` opt-outs due at `now` until `claimedUntil` (see ``OptOutOutbox``).
    public func claimOptOuts(at now: Timestamp, limit: Int, until claimedUntil: Timestamp) async throws -> [OptOutTask] {
        try await graph.claimOptOuts(at: now, limit: limit, until: claimedUntil)
    }

    /// Records what became of an attempt at `task`.
    public func settleOptOut(_ task: OptOutTask, _ settlement: OptOutSettlement, at now: Timestamp) async throws {
        try await graph.settleOptOut(task, settlement, at: now)
    }

    /// How many opt-outs are not settled yet.
    public func pendingOptOuts() async throws -> Int {
        try await graph.pendingOptOuts()
    }

    // MARK: RateLimiter

    public func acquire(_ requests: [RateLimitRequest], at now: Timestamp) async throws -> [Bool] {
        try await rateLimiter.acquire(requests, at: now)
    }

    public func count(key: RateLimitKey, window: Duration, at now: Timestamp) async throws -> Int {
        try await rateLimiter.count(key: key, window: window, at: now)
    }

    // MARK: BackfillSource

    public func backfillCandidates(_ query: BackfillQuery, after: String?, limit: Int) async throws
        -> [BackfillCandidate]
    {
        try await graph.backfillCandidates(query, after: after, limit: limit)
    }

    public func countBackfillCandidates(_ query: BackfillQuery, after: String?) async throws -> Int {
        try await graph.countBackfillCandidates(query, after: after)
    }

    public func backfillCheckpoint(partnerID: String) async throws -> BackfillCheckpoint? {
        try await graph.backfillCheckpoint(partnerID: partnerID)
    }

    public func saveBackfillCheckpoint(_ checkpoint: BackfillCheckpoint) async throws {
        try await graph.saveBackfillCheckpoint(checkpoint)
    }

    public func clearBackfillCheckpoint(partnerID: String) async throws {
        try await graph.clearBackfillCheckpoint(partnerID: partnerID)
    }
}
