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
}

extension CombinedStore {
    /// The `admissions` of ``createRoot(for:at:consent:admitting:lease:)`` for a limiter without
    /// leases.
    package static func leased(_ acquired: [Bool]) -> [LeasedAdmission] {
        acquired.map { $0 ? .admitted : .rateLimited }
    }
}
