/// One rate-limit check: may one more call be made under `key`?
public struct RateLimitRequest: Sendable, Hashable {
    /// `pull:{partner}:{ec_hash}`.
    public var key: String
    public var policy: RateLimitPolicy

    public init(key: String, policy: RateLimitPolicy) {
        self.key = key
        self.policy = policy
    }

    /// The kernel's key for a partner and an EC hash.
    public static func pullKey(partnerID: String, ecHash: some StringProtocol) -> String {
        "pull:\(partnerID):\(ecHash)"
    }
}

/// Counts calls per key in a true sliding window.
///
/// ``acquire(_:at:)`` is an atomic check-and-count: a shared store must implement it
/// without a read-then-write race, so that concurrent requests on one or many nodes never
/// overshoot a limit.
public protocol RateLimiter: Sendable {
    /// For each request, counts one call at `now` if fewer than `policy.calls` calls were
    /// counted under its key in `(now - policy.window, now]`; returns which were admitted.
    func acquire(_ requests: [RateLimitRequest], at now: Timestamp) async throws -> [Bool]

    /// Calls counted under `key` in the window ending at `now`, without counting one.
    func count(key: String, window: Duration, at now: Timestamp) async throws -> Int
}
