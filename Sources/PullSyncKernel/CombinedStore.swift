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

    /// Whether ``record(ecHash:admittingDue:limit:lease:at:)`` counts due calls (and
    /// ``uncount(_:at:holder:)`` takes them back). The kernel uses that step only when it does.
    /// `false` by default.
    var countsDueCalls: Bool { get }

    /// Reads the record of `ecHash`, as ``IdentityGraph/record(ecHash:)`` does, and in the same
    /// step tries the calls of `calls` whose partner is due in that record: the first `limit`
    /// of them, in order, whose partner has no UID there or one that is not fresh
    /// (``PartnerUID/isFresh(at:ttl:)`` with the call's `ttl`). Each call tried is counted as
    /// ``RateLimiter/admit(_:lease:at:)`` counts it, or as ``RateLimiter/acquire(_:at:)`` does
    /// without `lease`; a call tried and refused (rate-limited, or leased elsewhere) still uses
    /// up its place under `limit`. With `lease`, the calls counted are leased as one batch:
    /// until `now` plus the longest `timeout` among the calls tried plus the lease's margin.
    /// Nothing is tried for an unknown or withdrawn EC. Each call's key is distinct.
    ///
    /// - Returns: the record, and for each of `calls` in order its admission, or `nil` when it
    ///   was not tried (not due, past `limit`, or no record to count against).
    ///
    /// The default reads the record and tries nothing.
    func record(
        ecHash: String,
        admittingDue calls: [DueCall],
        limit: Int,
        lease: DueLease?,
        at now: Timestamp
    ) async throws -> (record: ECRecord?, admissions: [LeasedAdmission?])

    /// Takes back one call counted at `now` under each of `keys` by
    /// ``record(ecHash:admittingDue:limit:lease:at:)`` that won't be made (the kernel refused it
    /// after the step), and gives back `holder`'s lease on the key: the key then admits as if
    /// that call had never been counted. Required of a store whose ``countsDueCalls`` is `true`.
    func uncount(_ keys: [RateLimitKey], at now: Timestamp, holder: String?) async throws
}

/// How the calls a step counts for a known EC are leased (see
/// ``CombinedStore/record(ecHash:admittingDue:limit:lease:at:)``).
public struct DueLease: Sendable, Hashable {
    /// Who holds the leases (see ``CallLease/holder``).
    public var holder: String
    /// How long a lease outlasts the longest call it covers.
    public var margin: Duration

    /// Creates the terms of a lease held by `holder`, `margin` past the longest call.
    public init(holder: String, margin: Duration) {
        self.holder = holder
        self.margin = margin
    }
}

/// A call counted only if its partner is due (see
/// ``CombinedStore/record(ecHash:admittingDue:limit:lease:at:)``).
public struct DueCall: Sendable, Hashable {
    /// The partner's source domain: the key of its UID in the record.
    public var sourceDomain: String
    /// How long the partner's UID stays fresh without an expiry of its own.
    public var ttl: Duration
    /// How long the call may take: its lease covers it.
    public var timeout: Duration
    /// The rate-limit check of the call.
    public var request: RateLimitRequest

    /// Creates a call for `sourceDomain`'s partner, due after `ttl`, taking at most `timeout`,
    /// checked as `request`.
    public init(sourceDomain: String, ttl: Duration, timeout: Duration, request: RateLimitRequest) {
        self.sourceDomain = sourceDomain
        self.ttl = ttl
        self.timeout = timeout
        self.request = request
    }

    /// Whether the call is due in `record` at `now`: no UID, or one that is not fresh.
    public func isDue(in record: ECRecord, at now: Timestamp) -> Bool {
        guard let existing = record.partners[sourceDomain] else { return true }
        return !existing.isFresh(at: now, ttl: ttl)
    }
}

extension CombinedStore {
    public var countsDueCalls: Bool { false }

    /// Reads the record; tries nothing.
    public func record(
        ecHash: String,
        admittingDue calls: [DueCall],
        limit: Int,
        lease: DueLease?,
        at now: Timestamp
    ) async throws -> (record: ECRecord?, admissions: [LeasedAdmission?]) {
        (try await record(ecHash: ecHash), Array(repeating: nil, count: calls.count))
    }

    /// Nothing to take back: the default step counts nothing.
    public func uncount(_ keys: [RateLimitKey], at now: Timestamp, holder: String?) async throws {}

    /// The admissions of ``record(ecHash:admittingDue:limit:lease:at:)`` for a store that counts
    /// one call at a time with `count` (`true`: counted): the calls ``tried(_:in:limit:at:)``
    /// picks, in order.
    package static func admissions(
        of calls: [DueCall],
        in record: ECRecord?,
        limit: Int,
        at now: Timestamp,
        counting count: (RateLimitRequest) async throws -> Bool
    ) async rethrows -> [LeasedAdmission?] {
        var admissions = [LeasedAdmission?](repeating: nil, count: calls.count)
        for index in tried(calls, in: record, limit: limit, at: now) {
            admissions[index] = try await count(calls[index].request) ? .admitted : .rateLimited
        }
        return admissions
    }

    /// The admissions of ``record(ecHash:admittingDue:limit:lease:at:)`` for a store that counts
    /// the calls ``tried(_:in:limit:at:)`` picks in one batch with `count` (one answer per request,
    /// in order; `true`: counted).
    package static func admissions(
        of calls: [DueCall],
        in record: ECRecord?,
        limit: Int,
        at now: Timestamp,
        countingAll count: ([RateLimitRequest]) async throws -> [Bool]
    ) async rethrows -> [LeasedAdmission?] {
        let tried = Array(tried(calls, in: record, limit: limit, at: now))
        var admissions = [LeasedAdmission?](repeating: nil, count: calls.count)
        guard !tried.isEmpty else { return admissions }
        let counted = try await count(tried.map { calls[$0].request })
        for (index, admitted) in zip(tried, counted) { admissions[index] = admitted ? .admitted : .rateLimited }
        return admissions
    }

    /// The indices of the calls ``record(ecHash:admittingDue:limit:lease:at:)`` tries: the first
    /// `limit` of `calls` due in `record` at `now`, in order; none without a record to count
    /// against.
    static func tried(
        _ calls: [DueCall],
        in record: ECRecord?,
        limit: Int,
        at now: Timestamp
    ) -> TriedCalls {
        TriedCalls(calls: calls, record: record.flatMap { $0.withdrawn ? nil : $0 }, limit: limit, now: now)
    }

    /// The `admissions` of ``createRoot(for:at:consent:admitting:lease:)`` for a limiter without
    /// leases.
    package static func leased(_ acquired: [Bool]) -> [LeasedAdmission] {
        acquired.map { $0 ? .admitted : .rateLimited }
    }
}

/// The indices ``CombinedStore/tried(_:in:limit:at:)`` picks. A sequence of its own, not a lazy
/// filter: the filter's closure would be allocated on every request.
struct TriedCalls: Sequence, IteratorProtocol {
    let calls: [DueCall]
    /// `nil` when there is nothing to count against (no record, or a withdrawn EC).
    let record: ECRecord?
    var limit: Int
    let now: Timestamp
    var index = 0

    mutating func next() -> Int? {
        guard let record else { return nil }
        while limit > 0, index < calls.count {
            defer { index += 1 }
            if calls[index].isDue(in: record, at: now) {
                limit -= 1
                return index
            }
        }
        return nil
    }
}
