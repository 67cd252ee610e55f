package import PullSyncKernel
package import PullSyncStorage

// OptOutOutbox: claiming and settling queued opt-outs across nodes.
extension PostgresStore {
    /// An opt-out already in the outbox stays as it is (pending, or settled about the same UID);
    /// one settled about an older UID is queued again: the partner learned the EC anew since.
    static let requeueNewer = """
        ON CONFLICT (ec_hash, source_domain) DO UPDATE SET
            result = NULL, settled_at = NULL, attempts = 0, enqueued_at = excluded.enqueued_at,
            next_at = excluded.next_at, uid_synced_at = excluded.uid_synced_at
        WHERE pullsync_optouts.result IS NOT NULL AND pullsync_optouts.uid_synced_at < excluded.uid_synced_at
        """

    package func claimOptOuts(at now: Timestamp, limit: Int, until claimedUntil: Timestamp) async throws -> [OptOutTask] {
        let at = now.nanosecondsSinceEpoch
        let until = claimedUntil.nanosecondsSinceEpoch
        // SKIP LOCKED: a row another node is claiming right now is left to it.
        return try await run(
            """
            WITH due AS (
                SELECT ec_hash, source_domain FROM pullsync_optouts
                WHERE result IS NULL AND next_at <= \(at) ORDER BY next_at, ec_hash, source_domain
                LIMIT \(max(0, limit)) FOR UPDATE SKIP LOCKED
            )
            UPDATE pullsync_optouts o SET next_at = \(until)
            FROM due WHERE o.ec_hash = due.ec_hash AND o.source_domain = due.source_domain
            RETURNING o.ec_hash, o.source_domain, o.ec_id, o.enqueued_at, o.attempts
            """
        ) { rows in
            var tasks: [OptOutTask] = []
            for try await (hash, domain, id, enqueued, attempts) in rows.decode((String, String, String, Int64, Int).self) {
                tasks.append(
                    OptOutTask(
                        sourceDomain: domain,
                        ecHash: hash,
                        ecID: id,
                        enqueuedAt: Timestamp(nanosecondsSinceEpoch: enqueued),
                        attempts: attempts
                    )
                )
            }
            return tasks.sorted { ($0.enqueuedAt, $0.ecHash, $0.sourceDomain) < ($1.enqueuedAt, $1.ecHash, $1.sourceDomain) }
        }
    }

    package func settleOptOut(_ task: OptOutTask, _ settlement: OptOutSettlement, at now: Timestamp) async throws {
        var next: Int64?
        if case .retry(let at) = settlement { next = at.nanosecondsSinceEpoch }
        let result = settlement.storedResult
        let settled: Int64? = result == nil ? nil : now.nanosecondsSinceEpoch
        try await run(
            """
            UPDATE pullsync_optouts SET attempts = attempts + 1, next_at = coalesce(\(next)::bigint, next_at),
                result = \(result)::text, settled_at = \(settled)::bigint
            WHERE ec_hash = \(task.ecHash) AND source_domain = \(task.sourceDomain) AND result IS NULL
            """
        ) { rows in for try await _ in rows {} }
    }

    package func pendingOptOuts() async throws -> Int {
        try await run("SELECT count(*)::integer FROM pullsync_optouts WHERE result IS NULL") { rows in
            var count = 0
            for try await value in rows.decode(Int.self) { count = value }
            return count
        }
    }
}
