import PostgresNIO
import PullSyncKernel
package import PullSyncStorage

// BackfillSource: candidate ECs for a new partner, and its checkpoint.
extension PostgresStore {
    /// `SELECT columns` over the candidates of `query` after `after`; ordered and limited when
    /// `limit` is given. Missing, or stale as `PartnerUID.isFresh` decides: past its expiry,
    /// or (no expiry) learned longer than the TTL ago.
    private static func candidates(
        _ columns: String,
        _ query: BackfillQuery,
        after: String?,
        limit: Int? = nil
    ) -> PostgresQuery {
        var binds = PostgresBindings()
        binds.append(query.sourceDomain)
        binds.append(after ?? "")
        binds.append(query.now.nanosecondsSinceEpoch)
        binds.append((query.now - query.ttl).nanosecondsSinceEpoch)
        var sql = """
            SELECT \(columns)
            FROM pullsync_ecs e
            LEFT JOIN pullsync_uids u ON u.ec_hash = e.ec_hash AND u.source_domain = $1
            WHERE e.withdrawn_at IS NULL AND e.ec_hash > $2 AND u.revoked_at IS NULL
              AND (u.uid IS NULL
                   OR (u.expires_at IS NOT NULL AND u.expires_at <= $3)
                   OR (u.expires_at IS NULL AND u.synced_at < $4))
            """
        if let limit {
            binds.append(max(0, limit))
            sql += " ORDER BY e.ec_hash LIMIT $5"
        }
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    package func backfillCandidates(
        _ query: BackfillQuery,
        after: String?,
        limit: Int
    ) async throws
        -> [BackfillCandidate]
    {
        let columns = """
            e.ec_hash, e.ec_id, e.consent_digest, e.consent_at, e.consent_kept, e.consent_tcf, e.consent_gpp,
            e.consent_gpp_sid, e.consent_usp
            """
        return try await run(Self.candidates(columns, query, after: after, limit: limit)) { rows in
            var found: [BackfillCandidate] = []
            for try await row in rows.decode(
                (String, String, Int64?, Int64?, Bool?, String?, String?, String?, String?).self
            ) {
                var kept = Snapshot(nil)
                (kept.digest, kept.at, kept.kept, kept.tcf, kept.gpp, kept.sections, kept.usp) =
                    (row.2, row.3, row.4, row.5, row.6, row.7, row.8)
                found.append(BackfillCandidate(ecHash: row.0, ecID: row.1, consent: kept.snapshot))
            }
            return found
        }
    }

    package func countBackfillCandidates(_ query: BackfillQuery, after: String?) async throws -> Int {
        try await run(Self.candidates("count(*)", query, after: after)) { rows in
            var count = 0
            for try await value in rows.decode(Int.self) { count = value }
            return count
        }
    }

    package func backfillCheckpoint(partnerID: String) async throws -> BackfillCheckpoint? {
        try await run(
            """
            SELECT cursor, started_at, updated_at, processed, outcomes FROM pullsync_backfill
            WHERE partner_id = \(partnerID)
            """
        ) { rows in
            for try await (cursor, started, updated, processed, outcomes) in rows.decode(
                (String, Int64, Int64, Int, String).self
            ) {
                return BackfillCheckpoint(
                    partnerID: partnerID,
                    cursor: cursor,
                    startedAt: Timestamp(nanosecondsSinceEpoch: started),
                    updatedAt: Timestamp(nanosecondsSinceEpoch: updated),
                    processed: processed,
                    outcomes: BackfillCheckpoint.decodeOutcomes(outcomes)
                )
            }
            return nil
        }
    }

    package func saveBackfillCheckpoint(_ checkpoint: BackfillCheckpoint) async throws {
        let started = checkpoint.startedAt.nanosecondsSinceEpoch
        let updated = checkpoint.updatedAt.nanosecondsSinceEpoch
        let outcomes = checkpoint.encodedOutcomes
        try await run(
            """
            INSERT INTO pullsync_backfill (partner_id, cursor, started_at, updated_at, processed, outcomes)
            VALUES (\(checkpoint.partnerID), \(checkpoint.cursor), \(started), \(updated), \(checkpoint.processed), \(outcomes))
            ON CONFLICT (partner_id) DO UPDATE SET
                cursor = excluded.cursor, started_at = excluded.started_at, updated_at = excluded.updated_at,
                processed = excluded.processed, outcomes = excluded.outcomes
            """
        ) { rows in for try await _ in rows {} }
    }

    package func clearBackfillCheckpoint(partnerID: String) async throws {
        try await run("DELETE FROM pullsync_backfill WHERE partner_id = \(partnerID)") { rows in
            for try await _ in rows {}
        }
    }
}
