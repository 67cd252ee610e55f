
public import PullSyncKernel
/// Which ECs a backfill looks for: known, not withdrawn, with the partner's UID missing or stale
/// at `now`, and the partner not revoked for them (their consent refused it last).
public struct BackfillQuery: Sendable, Hashable {
    /// The partner's `source_domain`, under which its UIDs are kept.
    public var sourceDomain: String
    /// The partner's TTL: a UID learned longer ago than this (and with no partner-given
    /// expiry still ahead) is stale, exactly as ``PartnerUID/isFresh(at:ttl:)`` decides.
    public var ttl: Duration
    /// The time staleness is judged at.
    public var now: Timestamp

    /// Creates a query for the partner keeping UIDs under `sourceDomain` with TTL `ttl`, judged at `now`.
    public init(sourceDomain: String, ttl: Duration, now: Timestamp) {
        self.sourceDomain = sourceDomain
        self.ttl = ttl
        self.now = now
    }

    /// Whether `record` is one this query looks for.
    public func matches(_ record: ECRecord) -> Bool {
        guard !record.withdrawn else { return false }
        guard let uid = record.partners[sourceDomain] else { return true }
        return !uid.isFresh(at: now, ttl: ttl)
    }
}

/// One EC a backfill visits.
public struct BackfillCandidate: Sendable, Hashable {
    /// The EC hash that keys the record; candidates are visited in its order.
    public var ecHash: String
    /// The full EC value, as the partner is sent it.
    public var ecID: String
    /// The consent signals last seen with the EC; `nil` when none were kept (an EC from before
    /// snapshots were kept).
    public var consent: ConsentSnapshot?

    /// Creates a candidate for the EC `ecID`, whose hash is `ecHash`, with its consent snapshot.
    public init(ecHash: String, ecID: String, consent: ConsentSnapshot? = nil) {
        self.ecHash = ecHash
        self.ecID = ecID
        self.consent = consent
    }
}

/// Where an interrupted backfill of one partner stopped, kept in the store so that running
/// it again resumes there.
public struct BackfillCheckpoint: Sendable, Hashable {
    /// The partner being backfilled.
    public var partnerID: String
    /// Every candidate whose EC hash sorts at or before this one has been handled.
    public var cursor: String
    /// When the backfill this checkpoint belongs to first started.
    public var startedAt: Timestamp
    /// When the checkpoint was last saved.
    public var updatedAt: Timestamp
    /// ECs handled so far, over every run of this backfill.
    public var processed: Int
    /// What became of them, by outcome (`uid`, `not_found`, `rate_limited`, ...).
    public var outcomes: [String: Int]

    /// Creates a checkpoint at `cursor` with the counts so far.
    public init(
        partnerID: String,
        cursor: String,
        startedAt: Timestamp,
        updatedAt: Timestamp,
        processed: Int,
        outcomes: [String: Int]
    ) {
        self.partnerID = partnerID
        self.cursor = cursor
        self.startedAt = startedAt
        self.updatedAt = updatedAt
        self.processed = processed
        self.outcomes = outcomes
    }

    /// `outcomes` as stores keep it: `name=count` pairs joined by `,`, sorted by name
    /// (outcome names are lowercase words and underscores).
    public var encodedOutcomes: String {
        outcomes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// Reads what ``encodedOutcomes`` wrote; pairs that don't parse are dropped.
    public static func decodeOutcomes(_ text: String) -> [String: Int] {
        var outcomes: [String: Int] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let count = Int(parts[1]) else { continue }
            outcomes[String(parts[0]), default: 0] += count
        }
        return outcomes
    }
}

/// A store that can list the ECs a backfill needs, in a stable order, and keep its checkpoint.
///
/// Candidates are ordered by EC hash, so a cursor (the last hash handled) is enough to resume,
/// and ECs created after the backfill started still get visited if they sort after it.
public protocol BackfillSource: Sendable {
    /// Up to `limit` candidates matching `query` whose EC hash sorts after `after` (from the
    /// start when `nil`), in ascending order of EC hash.
    func backfillCandidates(_ query: BackfillQuery, after: String?, limit: Int) async throws -> [BackfillCandidate]

    /// How many candidates match `query` after `after`.
    func countBackfillCandidates(_ query: BackfillQuery, after: String?) async throws -> Int

    /// The saved checkpoint of `partnerID`'s backfill, if one is under way.
    func backfillCheckpoint(partnerID: String) async throws -> BackfillCheckpoint?

    /// Saves (replaces) a checkpoint.
    func saveBackfillCheckpoint(_ checkpoint: BackfillCheckpoint) async throws

    /// Forgets `partnerID`'s checkpoint: its backfill is complete.
    func clearBackfillCheckpoint(partnerID: String) async throws
}
