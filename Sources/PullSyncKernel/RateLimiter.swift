/// What one (partner, EC) pair's calls are counted and leased under. A value of the strings
/// the kernel already holds, not a new one; stores persist it as `pull:{partner}:{ec_hash}`
/// (``description``).
public struct RateLimitKey: Sendable, Hashable, CustomStringConvertible {
    /// The partner's id (never contains `:`).
    public var partnerID: String
    /// The EC's hash.
    public var ecHash: Substring {
        didSet { digest = ECHash(ecHash).digest }
    }
    /// `ecHash`'s hash value, worked out once (``ECHash``).
    private var digest: Int

    /// The key of `partnerID`'s calls for the EC hashed `ecHash`.
    public init(partnerID: String, ecHash: Substring) {
        self.init(partnerID: partnerID, ecHash: ECHash(ecHash))
    }

    /// The key of `partnerID`'s calls for the EC hashed `ecHash`, whose hash value is known.
    package init(partnerID: String, ecHash: ECHash) {
        self.partnerID = partnerID
        self.ecHash = ecHash.text
        self.digest = ecHash.digest
    }

    public static func == (lhs: RateLimitKey, rhs: RateLimitKey) -> Bool {
        lhs.partnerID == rhs.partnerID && lhs.ecHash == rhs.ecHash
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(partnerID)
        hasher.combine(digest)
    }

    /// The key of `partnerID`'s calls for the EC hashed `ecHash`.
    public init(partnerID: String, ecHash: String) {
        self.init(partnerID: partnerID, ecHash: ecHash[...])
    }

    /// `pull:{partner}:{ec_hash}`: the text stores persist (existing databases hold it).
    public var description: String { "pull:\(partnerID):\(ecHash)" }
}

/// One rate-limit check: may one more call be made under `key`?
public struct RateLimitRequest: Sendable, Hashable {
    /// The (partner, EC) pair counted.
    public var key: RateLimitKey
    /// The limit the key is checked against.
    public var policy: RateLimitPolicy

    /// Creates a check of one more call under `key`, limited by `policy`.
    public init(key: RateLimitKey, policy: RateLimitPolicy) {
        self.key = key
        self.policy = policy
    }
}

/// A partner's calls-per-second budget as a sliding window of send times: at most `calls` calls
/// to the partner in any `window`. Kept per process by ``PartnerGuard``, and in a store shared
/// by several edge nodes (``RateLimiter/takeBudget(_:at:)``) whichever node sends them.
///
/// `calls / window` never exceeds the budget: 50/s is 50 calls in any second, 2.5/s is 2 calls
/// in any 0.8 s, 0.5/s is 1 call in any 2 s.
public struct SharedBudget: Sendable, Hashable {
    /// The partner whose budget it is.
    public var partnerID: String
    /// `budget:{partner}` (a partner id has no `:`, so it can't meet a `pull:` key). Formatted
    /// when asked (by a store binding it), not per call.
    public var key: String { "budget:\(partnerID)" }
    /// Calls allowed in any `window`; at least 1.
    public var calls: Int
    /// The sliding window `calls` are counted in.
    public var window: Duration

    /// The budget of `partnerID`, `perSecond` calls per second (more than 0).
    package init(partnerID: String, perSecond: Double) {
        precondition(perSecond > 0 && perSecond.isFinite, "a budget is a positive number of calls per second")
        self.partnerID = partnerID
        calls = max(1, Int(min(perSecond, Double(Int32.max)).rounded(.down)))
        window = .nanoseconds(Int64((Double(calls) / perSecond * 1e9).rounded(.up)))
    }
}

/// Counts calls per key in a true sliding window.
///
/// ``acquire(_:at:)`` is an atomic check-and-count: a shared store must implement it
/// without a read-then-write race, so that concurrent requests on one or many nodes never
/// overshoot a limit.
public protocol RateLimiter: Sendable {
    /// For each request, counts one call at `now` if fewer than `policy.calls` calls were
    /// counted under its key after `now - policy.window` (calls counted at a later time than
    /// `now` included: requests' turns can come out of time order, and no window may hold more
    /// than the limit); returns which were admitted. The requests' keys are distinct (the kernel
    /// asks for each partner once per request).
    func acquire(_ requests: [RateLimitRequest], at now: Timestamp) async throws -> [Bool]

    /// Calls counted under `key` after `now - window`, without counting one.
    func count(key: RateLimitKey, window: Duration, at now: Timestamp) async throws -> Int

    /// Whether leases live in the store, shared by every node using it (see ``CallLease``).
    var sharesLeases: Bool { get }

    /// Whether the store keeps partner budgets shared by every node using it: the kernel then
    /// calls ``takeBudget(_:at:)`` right before sending each call to a budgeted partner.
    var sharesBudgets: Bool { get }

    /// Takes a place in `budget`'s sliding window for a call about to be sent; `false` (the call
    /// is not sent) when `budget.calls` sends are already inside the window.
    func takeBudget(_ budget: SharedBudget, at now: Timestamp) async throws -> Bool

    /// Rate-limit check-and-count with a lease on each key, in one step (see the default).
    func admit(_ requests: [RateLimitRequest], lease: CallLease, at now: Timestamp) async throws -> [LeasedAdmission]

    /// Gives back `holder`'s leases on `keys`.
    func releaseLeases(_ keys: [RateLimitKey], holder: String) async throws
}

/// A short claim on a (partner, EC) call held in a shared store while the call is in flight,
/// so that another edge node doesn't start the same call.
public struct CallLease: Sendable, Hashable {
    /// Who holds it: one value per kernel (process), so a release never frees another node's lease.
    public var holder: String
    /// When it lapses on its own (a node that dies mid-call doesn't block the pair for long).
    public var expiresAt: Timestamp

    /// Creates a lease held by `holder` until `expiresAt`.
    public init(holder: String, expiresAt: Timestamp) {
        self.holder = holder
        self.expiresAt = expiresAt
    }
}

/// What a shared store decided for one ``RateLimitRequest`` taken with a lease.
public enum LeasedAdmission: Sendable, Hashable {
    /// Lease taken and the call counted.
    case admitted
    /// The limit for the window is used up; nothing taken.
    case rateLimited
    /// Another holder's unexpired lease is on the key (a call in flight on another node).
    case leased
}

extension RateLimiter {
    /// Whether leases live in the store, shared by every node using it. When `false` (the
    /// default), the kernel's own in-process bookkeeping is the only guard against duplicate
    /// calls and it makes no lease round trips.
    public var sharesLeases: Bool { false }

    /// Whether partner budgets live in the store. Default `false`: each process's own
    /// ``PartnerGuard`` is the budget.
    public var sharesBudgets: Bool { false }

    /// Default: always room (a limiter without shared budgets).
    public func takeBudget(_ budget: SharedBudget, at now: Timestamp) async throws -> Bool { true }

    /// For each request: takes a lease on its key unless another holder's lease is unexpired,
    /// then counts the call under the rate limit (giving the lease back when the limit is used
    /// up). Shared stores do it atomically, for the whole batch in one round trip.
    ///
    /// The default, for limiters without leases, is ``acquire(_:at:)``.
    public func admit(
        _ requests: [RateLimitRequest],
        lease: CallLease,
        at now: Timestamp
    ) async throws
        -> [LeasedAdmission]
    {
        try await acquire(requests, at: now).map { $0 ? .admitted : .rateLimited }
    }

    /// Gives back `holder`'s leases on `keys` (its calls ended). Default: nothing to do.
    public func releaseLeases(_ keys: [RateLimitKey], holder: String) async throws {}
}
