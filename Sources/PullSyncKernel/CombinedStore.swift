/// An identity graph and a rate limiter kept in one store, which can therefore take two steps
/// of a request in one round trip each. The kernel uses it when its graph and its rate limiter
/// are the same object of a type that conforms (the SQLite, PostgreSQL and in-memory stores do).
public protocol CombinedStore: IdentityGraph, RateLimiter, AnyObject {
    /// Creates the root entry of an EC issued on this request, as
    /// ``IdentityGraph/createRoot(for:at:consent:)`` does, and counts its first calls in the same
    /// step: as ``RateLimiter/admit(_:lease:at:)`` does with `lease`, or as
    /// ``RateLimiter/acquire(_:at:)`` does without one.
    ///
    /// The calls are counted only when this step created the entry: a new EC has no UID, so every
    /// call asked for is needed. When the entry was already there (a withdrawal, or another
    /// request, got there first), nothing is counted and `admissions` is `nil`; the kernel then
    /// decides again from the record.
    func createRoot(
        for edgeCookie: EdgeCookie,
        at now: Timestamp,
        consent: ConsentSnapshot?,
        admitting requests: [RateLimitRequest],
        lease: CallLease?
    ) async throws -> (record: ECRecord, admissions: [LeasedAdmission]?)

    /// Applies `writes` as ``IdentityGraph/write(_:ecHash:)`` does and, in the same round trip,
    /// gives back `holder`'s leases on `leaseKeys` as ``RateLimiter/releaseLeases(_:holder:)``
    /// does, whatever the writes' results. The kernel passes the keys with a request's last write,
    /// once all its calls have ended. A lease the store can't give back without waiting may be
    /// left to lapse. A store without shared leases only writes.
    func write(
        _ writes: [UIDWrite],
        ecHash: String,
        releasing leaseKeys: [RateLimitKey],
        holder: String
    ) async throws -> [WriteResult]

    /// Reads the record of `ecHash`, as ``IdentityGraph/record(ecHash:)`` does, and in the same
    /// step counts the calls of `calls` whose partner is due in that record: the first `limit`
    /// of them, in order, whose partner has no UID there or one that is not fresh
    /// (``PartnerUID/isFresh(at:ttl:)`` with the call's `ttl`). Each is counted as
    /// ``RateLimiter/admit(_:lease:at:)`` counts with `lease`, or as
    /// ``RateLimiter/acquire(_:at:)`` does without one. Nothing is counted for an unknown or
    /// withdrawn EC.
    ///
    /// - Returns: the record, and for each of `calls` in order its admission, or `nil` when it
    ///   was not counted (not due, past `limit`, or no record to count against).
    ///
    /// The default reads the record and counts nothing. A store that counts here must also
    /// implement ``uncount(_:at:holder:)``.
    func record(
        ecHash: String,
        admittingDue calls: [DueCall],
        limit: Int,
        lease: CallLease?,
        at now: Timestamp
    ) async throws -> (record: ECRecord?, admissions: [LeasedAdmission?])

    /// Takes back calls that ``record(ecHash:admittingDue:limit:lease:at:)`` counted at `now`
    /// and that won't be made (the kernel refused them locally after the step), with `holder`'s
    /// leases on them: as if they had never been counted.
    func uncount(_ keys: [RateLimitKey], at now: Timestamp, holder: String?) async throws
}

/// A call counted only if its partner is due (see
/// ``CombinedStore/record(ecHash:admittingDue:limit:lease:at:)``).
public struct DueCall: Sendable, Hashable {
    /// The partner's source domain: the key of its UID in the record.
    public var sourceDomain: String
    /// How long the partner's UID stays fresh without an expiry of its own.
    public var ttl: Duration
    /// The rate-limit check of the call.
    public var request: RateLimitRequest

    /// Creates a call for `sourceDomain`'s partner, due after `ttl`, checked as `request`.
    public init(sourceDomain: String, ttl: Duration, request: RateLimitRequest) {
        self.sourceDomain = sourceDomain
        self.ttl = ttl
        self.request = request
    }

    /// Whether the call is due in `record` at `now`: no UID, or one that is not fresh.
    public func isDue(in record: ECRecord, at now: Timestamp) -> Bool {
        guard let existing = record.partners[sourceDomain] else { return true }
        return !existing.isFresh(at: now, ttl: ttl)
    }
}

extension CombinedStore {
    /// Reads the record; counts nothing.
    public func record(
        ecHash: String,
        admittingDue calls: [DueCall],
        limit: Int,
        lease: CallLease?,
        at now: Timestamp
    ) async throws -> (record: ECRecord?, admissions: [LeasedAdmission?]) {
        (try await record(ecHash: ecHash), Array(repeating: nil, count: calls.count))
    }

    /// Nothing to take back: the default step counts nothing.
    public func uncount(_ keys: [RateLimitKey], at now: Timestamp, holder: String?) async throws {}

    /// Which of `calls` a step counting the due ones tries, in order: the first `limit` due in
    /// `record` at `now`, or none without a record to count against.
    package static func dueIndices(_ calls: [DueCall], in record: ECRecord?, limit: Int, at now: Timestamp) -> [Int] {
        guard let record, !record.withdrawn else { return [] }
        return Array(calls.indices.lazy.filter { calls[$0].isDue(in: record, at: now) }.prefix(max(0, limit)))
    }

    /// The `admissions` of ``createRoot(for:at:consent:admitting:lease:)`` for a limiter without
    /// leases.
    package static func leased(_ acquired: [Bool]) -> [LeasedAdmission] {
        acquired.map { $0 ? .admitted : .rateLimited }
    }
}
