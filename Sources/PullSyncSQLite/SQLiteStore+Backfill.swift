import PullSyncKernel
package import PullSyncStorage
import SQLiteNIO

// BackfillSource: candidate ECs for a new partner, and its checkpoint.
extension SQLiteStore {
    // Missing, or stale as `PartnerUID.isFresh` decides: past its expiry, or (no expiry)
    // learned longer than the TTL ago; not revoked. ?1 domain, ?2 after, ?3 now, ?4 now - ttl.
    private static let candidateFilter = """
        FROM pullsync_ecs e
        LEFT JOIN pullsync_uids u ON u.ec_hash = e.ec_hash AND u.source_domain = ?1
        WHERE e.withdrawn_at IS NULL AND e.ec_hash > ?2 AND u.revoked_at IS NULL
          AND (u.uid IS NULL
               OR (u.expires_at IS NOT NULL AND u.expires_at <= ?3)
               OR (u.expires_at IS NULL AND u.synced_at < ?4))
        """

    private static func candidateBindings(_ query: BackfillQuery, after: String?) -> [SQLiteData] {
        [.text(query.sourceDomain), .text(after ?? ""), .integer(int(query.now)), .integer(int(query.now - query.ttl))]
    }

    package func backfillCandidates(
        _ query: BackfillQuery,
        after: String?,
        limit: Int
    ) async throws
        -> [BackfillCandidate]
    {
        try await transaction { connection in
            try await connection.query(
                "SELECT e.ec_hash, e.ec_id, \(Self.consentColumns) \(Self.candidateFilter) ORDER BY e.ec_hash LIMIT ?5",
                Self.candidateBindings(query, after: after) + [.integer(max(0, limit))]
            ).map { row in
                BackfillCandidate(
                    ecHash: row.column("ec_hash")?.string ?? "",
                    ecID: row.column("ec_id")?.string ?? "",
                    consent: Self.consentSnapshot(row)
                )
            }
        }
    }

    package func countBackfillCandidates(_ query: BackfillQuery, after: String?) async throws -> Int {
        try await transaction { connection in
            let rows = try await connection.query(
                "SELECT count(*) AS n \(Self.candidateFilter)",
                Self.candidateBindings(query, after: after)
            )
            return Int(rows.first?.column("n")?.integer ?? 0)
        }
    }

    package func backfillCheckpoint(partnerID: String) async throws -> BackfillCheckpoint? {
        try await transaction { connection in
            try await connection.query(
                "SELECT cursor, started_at, updated_at, processed, outcomes FROM pullsync_backfill WHERE partner_id = ?1",
                [.text(partnerID)]
            ).first.map { row in
                BackfillCheckpoint(
                    partnerID: partnerID,
                    cursor: row.column("cursor")?.string ?? "",
                    startedAt: Timestamp(nanosecondsSinceEpoch: Int64(row.column("started_at")?.integer ?? 0)),
                    updatedAt: Timestamp(nanosecondsSinceEpoch: Int64(row.column("updated_at")?.integer ?? 0)),
                    processed: row.column("processed")?.integer ?? 0,
                    outcomes: BackfillCheckpoint.decodeOutcomes(row.column("outcomes")?.string ?? "")
                )
            }
        }
    }

    package func saveBackfillCheckpoint(_ checkpoint: BackfillCheckpoint) async throws {
        try await transaction { connection in
            _ = try await connection.query(
                """
                INSERT OR REPLACE INTO pullsync_backfill (partner_id, cursor, started_at, updated_at, processed, outcomes)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                """,
                [
                    .text(checkpoint.partnerID), .text(checkpoint.cursor), .integer(Self.int(checkpoint.startedAt)),
                    .integer(Self.int(checkpoint.updatedAt)), .integer(checkpoint.processed),
                    .text(checkpoint.encodedOutcomes),
                ]
            )
        }
    }

    package func clearBackfillCheckpoint(partnerID: String) async throws {
        try await transaction { connection in
            _ = try await connection.query("DELETE FROM pullsync_backfill WHERE partner_id = ?1", [.text(partnerID)])
        }
    }
}
