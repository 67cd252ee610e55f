/// A partner UID as the identity graph keeps it.
public struct PartnerUID: Sendable, Hashable {
    /// The partner's UID for the EC, as the partner returned it.
    public var uid: String
    /// When it was learned.
    public var syncedAt: Timestamp
    /// A partner-given expiry that overrides the partner's TTL, if any.
    public var expiresAt: Timestamp?

    /// Creates a UID learned at `syncedAt`; `expiresAt` is a partner-given expiry, if any.
    public init(uid: String, syncedAt: Timestamp, expiresAt: Timestamp? = nil) {
        self.uid = uid
        self.syncedAt = syncedAt
        self.expiresAt = expiresAt
    }

    /// Whether this UID is still fresh at `now` for a partner whose TTL is `ttl`: not older
    /// than the TTL, or, when the partner gave an expiry, not yet expired.
    public func isFresh(at now: Timestamp, ttl: Duration) -> Bool {
        if let expiresAt { return now < expiresAt }
        return now - syncedAt <= ttl
    }

    /// When this UID stops being fresh for a partner whose TTL is `ttl`: its expiry, or the end
    /// of the TTL. Nothing about it can change before then.
    func freshUntil(ttl: Duration) -> Timestamp {
        expiresAt ?? syncedAt + ttl
    }
}

/// One EC's root entry and the partner UIDs learned for it.
public struct ECRecord: Sendable, Hashable {
    /// The EC hash that keys the record.
    public var ecHash: String
    /// The EC value it was created with.
    public var ecID: String
    /// When the root entry was created (the EC was first seen).
    public var createdAt: Timestamp
    /// When a request with the EC was last seen, recorded coarsely (at most once a day): an EC
    /// not seen for the retention period is deleted.
    public var seenAt: Timestamp
    /// Consent was withdrawn: nothing is written or pulled for this EC any more.
    public var withdrawn: Bool
    /// The ``ConsentSnapshot/digest`` of the consent snapshot kept for the EC; `nil` when none is.
    public var consentDigest: Int64?
    /// UIDs keyed by the partner's `source_domain`.
    public var partners: [String: PartnerUID]

    /// Creates a record; a new one was seen when created, is not withdrawn and has no partner UIDs.
    public init(
        ecHash: String,
        ecID: String,
        createdAt: Timestamp,
        seenAt: Timestamp? = nil,
        withdrawn: Bool = false,
        consentDigest: Int64? = nil,
        partners: [String: PartnerUID] = [:]
    ) {
        self.ecHash = ecHash
        self.ecID = ecID
        self.createdAt = createdAt
        self.seenAt = seenAt ?? createdAt
        self.withdrawn = withdrawn
        self.consentDigest = consentDigest
        self.partners = partners
    }
}

/// A conditional UID write: store `value` under `sourceDomain` only if the entry there is
/// still `expected` (what eligibility saw), so a newer UID from another writer is never
/// clobbered, and only if the partner was not revoked for the EC since the call was planned.
public struct UIDWrite: Sendable, Hashable {
    /// The partner's `source_domain`, under which the UID is kept.
    public var sourceDomain: String
    /// The UID to store.
    public var value: PartnerUID
    /// The entry eligibility saw: `nil` when it was missing.
    public var expected: PartnerUID?
    /// When the call was planned: a revocation at or after it wins (``WriteResult/revoked``).
    public var plannedAt: Timestamp

    /// Creates a write of `value` under `sourceDomain`, on condition that the entry is still
    /// `expected`; `plannedAt` defaults to the UID's `syncedAt`.
    public init(sourceDomain: String, value: PartnerUID, expected: PartnerUID?, plannedAt: Timestamp? = nil) {
        self.sourceDomain = sourceDomain
        self.value = value
        self.expected = expected
        self.plannedAt = plannedAt ?? value.syncedAt
    }
}

/// What became of one ``UIDWrite``.
public enum WriteResult: String, Sendable, Hashable, CaseIterable {
    /// Written.
    case stored
    /// Not written: another writer changed the entry after eligibility was decided.
    case conflict
    /// Not written: the EC's consent was withdrawn.
    case withdrawn
    /// Not written: the EC has no root entry (deleted meanwhile).
    case unknownEC = "unknown_ec"
    /// Not written: the request's consent refused the partner for this EC after the call was
    /// planned (``IdentityGraph/revoke(_:ecHash:at:)``).
    case revoked
}

/// The publisher's identity graph: for each EC, the partner UIDs learned for it.
///
/// Implementations must make ``write(_:ecHash:)`` atomic per write: the comparison with
/// `expected`, the withdrawal check and the store happen as one step.
public protocol IdentityGraph: Sendable {
    /// The record for `ecHash`, or `nil` when the EC is unknown.
    func record(ecHash: String) async throws -> ECRecord?

    /// Creates the root entry for `edgeCookie` if there is none (an EC issued on this
    /// request), keeping `consent` as its snapshot; returns the record as it is after the call
    /// (an existing entry is left as it is).
    func createRoot(for edgeCookie: EdgeCookie, at now: Timestamp, consent: ConsentSnapshot?) async throws -> ECRecord

    /// Applies conditional writes for one EC, in one round trip; returns one result per write.
    /// The writes are for distinct partners (one per call of a request).
    func write(_ writes: [UIDWrite], ecHash: String) async throws -> [WriteResult]

    /// Marks the EC withdrawn and forgets its partner UIDs and consent snapshot; in the same step,
    /// puts an ``OptOutTask`` in the store's outbox for each of `notifying` (source domains of
    /// partners with an opt-out endpoint) whose UID the EC held, unless one is pending or was
    /// settled about that UID or a newer one.
    /// Returns whether the EC was known.
    @discardableResult
    func withdraw(ecHash: String, at now: Timestamp, notifying: [String]) async throws -> Bool

    /// Revokes partners for one EC (its consent refused them): forgets their UIDs and remembers
    /// the revocation (time `now`), so that a write planned before it stores nothing
    /// (``WriteResult/revoked``) while one planned after it (consent given again) stores as
    /// usual. Nothing happens for an unknown or withdrawn EC. Returns the domains whose UID was
    /// forgotten, in one round trip; for each of them also in `notifying`, an ``OptOutTask`` is
    /// put in the store's outbox in the same step (unless one is pending or was settled about that
    /// UID or a newer one).
    @discardableResult
    func revoke(_ sourceDomains: [String], ecHash: String, at now: Timestamp, notifying: [String]) async throws
        -> [String]

    /// Records that a request with the EC was seen at `now` (the kernel calls it at most once a
    /// day per EC, and when the request's consent signals differ from the snapshot), and, when
    /// `consent` is given, replaces the EC's consent snapshot with it. Nothing happens for an
    /// unknown or withdrawn EC.
    func markSeen(ecHash: String, at now: Timestamp, consent: ConsentSnapshot?) async throws

    /// Whether ``write(_:ecHash:)`` is a round trip worth saving (to a database, or a thread of
    /// its own). When it is, a request's UID writes that end together give the scheduler a turn
    /// before they go, so that they go as one; for a graph in this process's memory that turn
    /// costs more than the write it would save. Default `true`.
    var writeIsRoundTrip: Bool { get }
}

extension ECRecord {
    /// How often an EC's ``seenAt`` is brought up to date: coarse, so that a page view costs no
    /// write.
    public static let seenResolution = Duration.seconds(86_400)
}

extension IdentityGraph {
    /// A write is a round trip unless the graph says otherwise.
    public var writeIsRoundTrip: Bool { true }

    /// Creates the root entry for `edgeCookie` if there is none, without a consent snapshot.
    public func createRoot(for edgeCookie: EdgeCookie, at now: Timestamp) async throws -> ECRecord {
        try await createRoot(for: edgeCookie, at: now, consent: nil)
    }

    /// Records that a request with the EC was seen at `now`, leaving its consent snapshot as it is.
    public func markSeen(ecHash: String, at now: Timestamp) async throws {
        try await markSeen(ecHash: ecHash, at: now, consent: nil)
    }

    /// Withdraws the EC, telling no partner.
    @discardableResult
    public func withdraw(ecHash: String, at now: Timestamp) async throws -> Bool {
        try await withdraw(ecHash: ecHash, at: now, notifying: [])
    }

    /// Revokes partners for the EC, telling none of them.
    @discardableResult
    public func revoke(_ sourceDomains: [String], ecHash: String, at now: Timestamp) async throws -> [String] {
        try await revoke(sourceDomains, ecHash: ecHash, at: now, notifying: [])
    }
}
