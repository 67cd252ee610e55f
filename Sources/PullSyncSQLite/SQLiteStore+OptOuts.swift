package import PullSyncKernel
package import PullSyncStorage
import SQLiteNIO

// OptOutOutbox: the opt-outs queued with a withdrawal or revocation.
extension SQLiteStore {
    /// When the EC's UID of `domain` was learned; `nil` when it holds none.
    static func uidSyncedAt(_ domain: String, ecHash: String, on connection: SQLiteConnection) async throws
        -> SQLiteInt64?
    {
        try await connection.query(
            "SELECT synced_at FROM pullsync_uids WHERE ec_hash = ?1 AND source_domain = ?2 AND uid IS NOT NULL",
            [.text(ecHash), .text(domain)]
        ).first?.column("synced_at")?.integer.map { SQLiteInt64($0) }
    }

    /// Puts the opt-out of (`domain`, EC) in the outbox, about the UID learned at `uidSyncedAt`:
    /// unless one is pending, or one was settled about that UID or a newer one.
    static func enqueueOptOut(
        _ domain: String,
        ecHash: String,
        uidSyncedAt: SQLiteInt64,
        at now: Timestamp,
        on connection: SQLiteConnection
    ) async throws {
        _ = try await connection.query(
            """
            INSERT INTO pullsync_optouts (ec_hash, source_domain, ec_id, enqueued_at, next_at, uid_synced_at)
            SELECT ec_hash, ?2, ec_id, ?3, ?3, ?4 FROM pullsync_ecs WHERE ec_hash = ?1
            ON CONFLICT (ec_hash, source_domain) DO UPDATE SET
                result = NULL, settled_at = NULL, attempts = 0, enqueued_at = excluded.enqueued_at,
                next_at = excluded.next_at, uid_synced_at = excluded.uid_synced_at
            WHERE pullsync_optouts.result IS NOT NULL AND pullsync_optouts.uid_synced_at < excluded.uid_synced_at
            """,
            [.text(ecHash), .text(domain), .integer(int(now)), .integer(Int(uidSyncedAt))]
        )
    }

    package func claimOptOuts(at now: Timestamp, limit: Int, until claimedUntil: Timestamp) async throws -> [OptOutTask] {
        try await transaction { connection in
            let claimed = try await connection.query(
                """
                UPDATE pullsync_optouts SET next_at = ?3 WHERE (ec_hash, source_domain) IN (
                    SELECT ec_hash, source_domain FROM pullsync_optouts
                    WHERE result IS NULL AND next_at <= ?1 ORDER BY next_at, ec_hash, source_domain LIMIT ?2
                ) RETURNING ec_hash, source_domain, ec_id, enqueued_at, attempts
                """,
                [.integer(Self.int(now)), .integer(max(0, limit)), .integer(Self.int(claimedUntil))]
            ).map { row in
                OptOutTask(
                    sourceDomain: row.column("source_domain")?.string ?? "",
                    ecHash: row.column("ec_hash")?.string ?? "",
                    ecID: row.column("ec_id")?.string ?? "",
                    enqueuedAt: Timestamp(nanosecondsSinceEpoch: Int64(row.column("enqueued_at")?.integer ?? 0)),
                    attempts: row.column("attempts")?.integer ?? 0
                )
            }
            return claimed.sorted {
                ($0.enqueuedAt, $0.ecHash, $0.sourceDomain) < ($1.enqueuedAt, $1.ecHash, $1.sourceDomain)
            }
        }
    }

    package func settleOptOut(_ task: OptOutTask, _ settlement: OptOutSettlement, at now: Timestamp) async throws {
        let next: SQLiteData = if case .retry(let at) = settlement { .integer(Self.int(at)) } else { .null }
        try await transaction { connection in
            _ = try await connection.query(
                """
                UPDATE pullsync_optouts SET attempts = attempts + 1, next_at = coalesce(?3, next_at),
                    result = ?4, settled_at = CASE WHEN ?4 IS NULL THEN NULL ELSE ?5 END
                WHERE ec_hash = ?1 AND source_domain = ?2 AND result IS NULL
                """,
                [
                    .text(task.ecHash), .text(task.sourceDomain), next,
                    settlement.storedResult.map(SQLiteData.text) ?? .null, .integer(Self.int(now)),
                ]
            )
        }
    }

    package func pendingOptOuts() async throws -> Int {
        try await transaction { connection in
            let rows = try await connection.query("SELECT count(*) AS n FROM pullsync_optouts WHERE result IS NULL")
            return Int(rows.first?.column("n")?.integer ?? 0)
        }
    }
}
