public import PullSyncKernel

/// A store that hands every step to another one, telling `before` which step it is about to take
/// first: a test makes one step fail by throwing there, a benchmark counts round trips (one step
/// is one round trip: a statement on PostgreSQL, a transaction on SQLite).
public final class InterceptingStore: CombinedStore {
    /// A store step, named after the protocol requirement it takes.
    public enum Step: String, Sendable, CaseIterable {
        case record, recordAdmittingDue, createRoot, createRootAdmitting, write, writeReleasing, withdraw, revoke
        case markSeen, acquire, count, takeBudget, admit, releaseLeases, uncount
    }

    /// The store every step goes to.
    public let base: any CombinedStore
    private let before: @Sendable (Step) throws -> Void

    /// - Parameters:
    ///   - base: takes every step.
    ///   - before: called before each step; what it throws is the step's error (`base` is not asked).
    public init(_ base: any CombinedStore, before: @escaping @Sendable (Step) throws -> Void) {
        self.base = base
        self.before = before
    }

    public func createRoot(
        for edgeCookie: EdgeCookie,
        at now: Timestamp,
        consent: ConsentSnapshot?,
        admitting requests: [RateLimitRequest],
        lease: CallLease?
    ) async throws -> (record: ECRecord, admissions: [LeasedAdmission]?) {
        try before(.createRootAdmitting)
        return try await base.createRoot(for: edgeCookie, at: now, consent: consent, admitting: requests, lease: lease)
    }

    public func write(
        _ writes: [UIDWrite],
        ecHash: String,
        releasing leaseKeys: [RateLimitKey],
        holder: String
    ) async throws -> [WriteResult] {
        try before(.writeReleasing)
        return try await base.write(writes, ecHash: ecHash, releasing: leaseKeys, holder: holder)
    }

    public func record(
        ecHash: String,
        admittingDue calls: [DueCall],
        limit: Int,
        lease: DueLease?,
        at now: Timestamp
    ) async throws -> (record: ECRecord?, admissions: [LeasedAdmission?]) {
        try before(.recordAdmittingDue)
        return try await base.record(ecHash: ecHash, admittingDue: calls, limit: limit, lease: lease, at: now)
    }

    public var countsDueCalls: Bool { base.countsDueCalls }

    public func uncount(_ keys: [RateLimitKey], at now: Timestamp, holder: String?) async throws {
        try before(.uncount)
        try await base.uncount(keys, at: now, holder: holder)
    }

    public func record(ecHash: String) async throws -> ECRecord? {
        try before(.record)
        return try await base.record(ecHash: ecHash)
    }

    public func createRoot(for edgeCookie: EdgeCookie, at now: Timestamp, consent: ConsentSnapshot?) async throws
        -> ECRecord
    {
        try before(.createRoot)
        return try await base.createRoot(for: edgeCookie, at: now, consent: consent)
    }

    public func write(_ writes: [UIDWrite], ecHash: String) async throws -> [WriteResult] {
        try before(.write)
        return try await base.write(writes, ecHash: ecHash)
    }

    public func withdraw(ecHash: String, at now: Timestamp, notifying: [String]) async throws -> Bool {
        try before(.withdraw)
        return try await base.withdraw(ecHash: ecHash, at: now, notifying: notifying)
    }

    public func revoke(_ sourceDomains: [String], ecHash: String, at now: Timestamp, notifying: [String])
        async throws -> [String]
    {
        try before(.revoke)
        return try await base.revoke(sourceDomains, ecHash: ecHash, at: now, notifying: notifying)
    }

    public func markSeen(ecHash: String, at now: Timestamp, consent: ConsentSnapshot?) async throws {
        try before(.markSeen)
        try await base.markSeen(ecHash: ecHash, at: now, consent: consent)
    }

    public func acquire(_ requests: [RateLimitRequest], at now: Timestamp) async throws -> [Bool] {
        try before(.acquire)
        return try await base.acquire(requests, at: now)
    }

    public func count(key: RateLimitKey, window: Duration, at now: Timestamp) async throws -> Int {
        try before(.count)
        return try await base.count(key: key, window: window, at: now)
    }

    public var sharesLeases: Bool { base.sharesLeases }

    public var sharesBudgets: Bool { base.sharesBudgets }

    public func takeBudget(_ budget: SharedBudget, at now: Timestamp) async throws -> Bool {
        try before(.takeBudget)
        return try await base.takeBudget(budget, at: now)
    }

    public func admit(_ requests: [RateLimitRequest], lease: CallLease, at now: Timestamp) async throws
        -> [LeasedAdmission]
    {
        try before(.admit)
        return try await base.admit(requests, lease: lease, at: now)
    }

    public func releaseLeases(_ keys: [RateLimitKey], holder: String) async throws {
        try before(.releaseLeases)
        try await base.releaseLeases(keys, holder: holder)
    }
}
