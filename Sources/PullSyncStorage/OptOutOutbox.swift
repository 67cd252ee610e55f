public import PullSyncKernel

/// The store's durable list of opt-outs owed to partners (``OptOutTask``), which
/// ``IdentityGraph/withdraw(ecHash:at:notifying:)`` and ``IdentityGraph/revoke(_:ecHash:at:notifying:)``
/// fill in the same step as the change they follow. `OptOutService` delivers it.
///
/// A (partner, EC) pair is in it at most once: once acknowledged or given up, it stays settled for
/// the UID it was about, so the partner is not told twice about one UID. Only a UID learned after
/// that (consent given again) queues it again. Retention keeps an EC while one of its tasks is
/// pending, and deletes the settled ones with the EC.
public protocol OptOutOutbox: Sendable {
    /// Claims up to `limit` unsettled tasks whose next attempt is due at `now`, the longest-waiting
    /// first: each is not due again before `claimedUntil` (unless its attempt is settled first), so
    /// nodes sharing the store never send the same task at once, and one whose node stopped
    /// mid-attempt comes back after the claim.
    func claimOptOuts(at now: Timestamp, limit: Int, until claimedUntil: Timestamp) async throws -> [OptOutTask]

    /// Records what became of an attempt at `task`: settled for good, or due again at a time.
    func settleOptOut(_ task: OptOutTask, _ settlement: OptOutSettlement, at now: Timestamp) async throws

    /// How many tasks are not settled yet.
    func pendingOptOuts() async throws -> Int
}

/// What an attempt at an ``OptOutTask`` leaves in the outbox.
public enum OptOutSettlement: Sendable, Hashable {
    /// The partner acknowledged it: not sent again.
    case acknowledged
    /// It can't succeed, or it was tried for too long: not sent again.
    case abandoned
    /// Try again at this time.
    case retry(at: Timestamp)

    /// How stores keep a settled task's result; `nil` while it is pending.
    public var storedResult: String? {
        switch self {
        case .acknowledged: "acknowledged"
        case .abandoned: "abandoned"
        case .retry: nil
        }
    }
}
