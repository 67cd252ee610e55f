import Synchronization

/// One opt-out owed to a partner: an EC whose UID it had was withdrawn, or the partner was
/// revoked for it. Kept in the store's outbox until the partner acknowledges it (or it is given
/// up), so it survives restarts and store outages.
public struct OptOutTask: Sendable, Hashable {
    /// The partner's `source_domain`.
    public var sourceDomain: String
    /// The EC's hash, which keys it with `sourceDomain`.
    public var ecHash: String
    /// The full EC value, as the partner was sent it.
    public var ecID: String
    /// When the withdrawal or revocation happened.
    public var enqueuedAt: Timestamp
    /// Attempts made so far.
    public var attempts: Int

    /// Creates a task for the EC `ecID` (hash `ecHash`) and the partner keeping UIDs under `sourceDomain`.
    public init(sourceDomain: String, ecHash: String, ecID: String, enqueuedAt: Timestamp, attempts: Int = 0) {
        self.sourceDomain = sourceDomain
        self.ecHash = ecHash
        self.ecID = ecID
        self.enqueuedAt = enqueuedAt
        self.attempts = attempts
    }
}

/// What one attempt to deliver an ``OptOutTask`` came to.
package enum OptOutAttempt: Sendable, Hashable {
    /// The partner answered 2xx, or 404/410 (it knows no such user): done for good.
    case acknowledged(status: Int)
    /// Try again later: not admitted now (circuit open, paused, budget spent, the partner busy),
    /// no answer, or 408/425/429/5xx. `after` is the partner's `Retry-After`, if it gave one.
    case retry(reason: String, after: Duration?)
    /// It can't succeed: any other status, or the URL is not allowed. Not tried again. (A
    /// partner this node knows no endpoint for is tried again, until the task expires.)
    case failed(reason: String)

    /// What a partner's answer with `status` means: 2xx, 404 and 410 acknowledge; 408, 425, 429
    /// and 5xx are tried again; anything else fails.
    package static func answer(_ status: Int) -> OptOutAttempt {
        if (200..<300).contains(status) || status == 404 || status == 410 { return .acknowledged(status: status) }
        if status >= 500 || [408, 425, 429].contains(status) { return .retry(reason: "http_\(status)", after: nil) }
        return .failed(reason: "http_\(status)")
    }

    /// The metric's `result` label.
    package var result: String {
        switch self {
        case .acknowledged: "acknowledged"
        case .retry: "retry"
        case .failed: "failed"
        }
    }
}

/// Withdrawals the store refused (it was down): kept on this node and tried again, so that a
/// denial made during an outage still withdraws the EC and tells its partners. Bounded: past
/// `capacity`, the oldest is dropped (and counted by the kernel).
package final class PendingWithdrawals: Sendable {
    package struct Entry: Sendable, Hashable {
        package var edgeCookie: EdgeCookie
        package var issuedHere: Bool
    }

    private let entries = Mutex<[Entry]>([])
    private let capacity: Int

    package init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// Keeps `entry`; returns whether an older one was dropped for it.
    package func add(_ entry: Entry) -> Bool {
        entries.withLock { entries in
            guard !entries.contains(entry) else { return false }
            entries.append(entry)
            guard entries.count > capacity else { return false }
            entries.removeFirst()
            return true
        }
    }

    /// Everything kept, oldest first. An entry stays until ``remove(_:)``, so that it is counted
    /// while it is being tried again.
    package var all: [Entry] { entries.withLock { $0 } }

    /// Forgets `entry`: its withdrawal reached the store.
    package func remove(_ entry: Entry) {
        entries.withLock { $0.removeAll { $0 == entry } }
    }

    package var count: Int { entries.withLock { $0.count } }
}
