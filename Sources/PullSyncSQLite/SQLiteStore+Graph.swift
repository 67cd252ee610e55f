package import PullSyncKernel
package import PullSyncStorage
import SQLiteNIO

// IdentityGraph: records, root entries, UID writes (committed in groups), snapshots,
// revocations, withdrawals and retention.
extension SQLiteStore {
    package func record(ecHash: String) async throws -> ECRecord? {
        try await alone { connection in try await Self.record(ecHash: ecHash, on: connection) }
    }

    /// It counts due calls with the record.
    package var countsDueCalls: Bool { true }

    /// The record and its due partners' first calls counted, in one transaction (see
    /// ``CombinedStore/record(ecHash:admittingDue:limit:lease:at:)``). Leases are not kept.
    package func record(
        ecHash: String,
        admittingDue calls: [DueCall],
        limit: Int,
        lease: DueLease?,
        at now: Timestamp
    ) async throws -> (record: ECRecord?, admissions: [LeasedAdmission?]) {
        try await transaction { connection in
            let record = try await Self.record(ecHash: ecHash, on: connection)
            // Counted together (two statements), as one call after another would be.
            let admissions = try await Self.admissions(of: calls, in: record, limit: limit, at: now) { requests in
                try await Self.acquire(requests, at: now, on: connection)
            }
            return (record, admissions)
        }
    }

    private static func record(ecHash: String, on connection: SQLiteConnection) async throws -> ECRecord? {
        let rows = try await connection.query(
            """
            SELECT e.ec_id, e.created_at, e.seen_at, e.withdrawn_at, e.consent_digest,
                   u.source_domain, u.uid, u.synced_at, u.expires_at
            FROM pullsync_ecs e LEFT JOIN pullsync_uids u ON u.ec_hash = e.ec_hash
            WHERE e.ec_hash = ?1
            """,
            [.text(ecHash)]
        )
        return record(ecHash: ecHash, from: rows)
    }

    /// The record in `rows` of the EC's columns, each with one UID's columns (or none).
    private static func record(ecHash: String, from rows: [SQLiteRow]) -> ECRecord? {
        guard let first = rows.first else { return nil }
        var record = ECRecord(
            ecHash: ecHash,
            ecID: first.column("ec_id")?.string ?? "",
            createdAt: Timestamp(nanosecondsSinceEpoch: Int64(first.column("created_at")?.integer ?? 0)),
            seenAt: first.column("seen_at")?.integer.map { Timestamp(nanosecondsSinceEpoch: Int64($0)) },
            withdrawn: !(first.column("withdrawn_at")?.isNull ?? true),
            consentDigest: first.column("consent_digest")?.integer.map(Int64.init)
        )
        for row in rows {
            guard let domain = row.column("source_domain")?.string, let value = partnerUID(row) else { continue }
            record.partners[domain] = value
        }
        return record
    }

    /// The UID in a row with `uid`, `synced_at` and `expires_at` columns; `nil` when `uid` is NULL.
    private static func partnerUID(_ row: SQLiteRow) -> PartnerUID? {
        guard let uid = row.column("uid")?.string else { return nil }
        return PartnerUID(
            uid: uid,
            syncedAt: Timestamp(nanosecondsSinceEpoch: Int64(row.column("synced_at")?.integer ?? 0)),
            expiresAt: row.column("expires_at")?.integer.map { Timestamp(nanosecondsSinceEpoch: Int64($0)) }
        )
    }

    package func createRoot(for edgeCookie: EdgeCookie, at now: Timestamp, consent: ConsentSnapshot?) async throws
        -> ECRecord
    {
        try await rootEntry(for: edgeCookie, at: now, consent: consent, admitting: nil).record
    }

    /// Creates the root entry and, only when this created it, counts `requests`, in one
    /// transaction (see ``CombinedStore/createRoot(for:at:consent:admitting:lease:)``). Leases
    /// are not kept: one SQLite file serves one node.
    package func createRoot(
        for edgeCookie: EdgeCookie,
        at now: Timestamp,
        consent: ConsentSnapshot?,
        admitting requests: [RateLimitRequest],
        lease: CallLease?
    ) async throws -> (record: ECRecord, admissions: [LeasedAdmission]?) {
        try await rootEntry(for: edgeCookie, at: now, consent: consent, admitting: requests)
    }

    private func rootEntry(
        for edgeCookie: EdgeCookie,
        at now: Timestamp,
        consent: ConsentSnapshot?,
        admitting requests: [RateLimitRequest]?
    ) async throws -> (record: ECRecord, admissions: [LeasedAdmission]?) {
        let root = Change.Root(edgeCookie: edgeCookie, at: now, consent: consent, admitting: requests)
        guard case .root(let record, let admissions) = try await make(.root(root)) else {
            throw SQLiteStoreError("a root entry's change came back as another kind")
        }
        return (record, admissions)
    }

    /// Writes; there are no shared leases to give back.
    package func write(
        _ writes: [UIDWrite],
        ecHash: String,
        releasing leaseKeys: [RateLimitKey],
        holder: String
    ) async throws -> [WriteResult] {
        try await write(writes, ecHash: ecHash)
    }

    /// Writes arriving while another transaction runs wait for the next one together (see
    /// ``make(_:)``). Each EC's writes are applied as a transaction of their own would apply them.
    package func write(_ writes: [UIDWrite], ecHash: String) async throws -> [WriteResult] {
        guard !writes.isEmpty else { return [] }
        guard case .written(let results) = try await make(.write(ecHash: ecHash, writes: writes)) else {
            throw SQLiteStoreError("a UID write's change came back as another kind")
        }
        return results
    }

    /// Makes `change` in a transaction shared with every change queued by the time its turn
    /// comes (group commit): UID writes and new ECs' root entries, of any EC.
    private func make(_ change: Change) async throws -> Changed {
        try await changes.submit(change) {
            try await turn.acquire()
        } commit: { batch in
            await makeTogether(batch)
        }
    }

    /// One transaction for `batch`; if it fails, each change again in a transaction of its own,
    /// so that one EC's can't fail another's. A lone root entry with nothing to count is one
    /// statement, which SQLite makes atomic by itself: no transaction around it.
    private func makeTogether(_ batch: [Change]) async -> [Result<Changed, any Error>] {
        if batch.count == 1, case .root(let root) = batch[0], root.admitting == nil {
            do {
                let made = try await alone(holdingTurn: true) { connection in
                    try await Self.createRoots([root], on: connection)
                }
                return [.success(.root(made[0].record, admissions: nil))]
            } catch {
                return [.failure(error)]
            }
        }
        do {
            let made = try await transaction(holdingTurn: true) { connection in
                try await Self.make(batch, on: connection)
            }
            return made.map { .success($0) }
        } catch where batch.count > 1 && !Task.isCancelled {
            var each: [Result<Changed, any Error>] = []
            for change in batch {
                do {
                    let made = try await transaction { connection in try await Self.make([change], on: connection) }
                    each.append(.success(made[0]))
                } catch {
                    each.append(.failure(error))
                }
            }
            return each
        } catch {
            return batch.map { _ in .failure(error) }
        }
    }

    /// Makes `batch`'s changes inside a transaction: every root entry first, then each change's
    /// first calls or writes in order. The written ECs and their UIDs are read in one statement
    /// and the UIDs that stand stored in one, for the whole batch (one more of each per 999
    /// parameters; each statement is compiled and run on the thread pool: a handful per
    /// transaction, not two per EC).
    private static func make(_ batch: [Change], on connection: SQLiteConnection) async throws -> [Changed] {
        let roots = batch.compactMap { change in if case .root(let root) = change { root } else { nil } }
        var created = try await createRoots(roots, on: connection).makeIterator()
        let written = batch.compactMap { change in if case .write(let ecHash, _) = change { ecHash } else { nil } }
        var graph = try await entries(of: written, on: connection)
        var stored: [SQLiteData] = []
        var made: [Changed] = []
        made.reserveCapacity(batch.count)
        for change in batch {
            switch change {
            case .write(let ecHash, let writes):
                made.append(.written(apply(writes, ecHash: ecHash, to: &graph, storing: &stored)))
            case .root(let root):
                guard let (record, isNew) = created.next() else {
                    throw SQLiteStoreError("a root entry was left out of its statement")
                }
                // Counted only for an entry this created: a new EC has no UID, so every call is due.
                guard let requests = root.admitting, isNew else {
                    made.append(.root(record, admissions: nil))
                    continue
                }
                let admissions = leased(try await acquire(requests, at: root.at, on: connection))
                made.append(.root(record, admissions: admissions))
            }
        }
        // A UID written twice in the batch is upserted twice, in order: the later write stands.
        for statement in statements(stored, columns: 5) {
            _ = try await connection.query(
                """
                INSERT INTO pullsync_uids (ec_hash, source_domain, uid, synced_at, expires_at)
                VALUES \(statement.placeholders)
                ON CONFLICT (ec_hash, source_domain) DO UPDATE
                SET uid = excluded.uid, synced_at = excluded.synced_at, expires_at = excluded.expires_at,
                    revoked_at = NULL
                """,
                statement.values
            )
        }
        return made
    }

    /// An EC's root entry as a write sees it: withdrawn or not, and each partner's UID (or
    /// revocation).
    private struct WrittenEC {
        var withdrawn: Bool
        var partners: [String: (uid: PartnerUID?, revokedAt: Int?)] = [:]
    }

    /// The entries of the ECs `ecHashes` names that exist, with their UIDs, read in as few
    /// statements as the parameter limit allows.
    private static func entries(of ecHashes: [String], on connection: SQLiteConnection) async throws
        -> [String: WrittenEC]
    {
        var graph: [String: WrittenEC] = [:]
        let distinct = Array(Set(ecHashes))
        for start in stride(from: 0, to: distinct.count, by: maxParameters) {
            let part = distinct[start..<min(start + maxParameters, distinct.count)]
            let placeholders = (1...part.count).map { "?\($0)" }.joined(separator: ", ")
            let rows = try await connection.query(
                """
                SELECT e.ec_hash, e.withdrawn_at, u.source_domain, u.uid, u.synced_at, u.expires_at, u.revoked_at
                FROM pullsync_ecs e LEFT JOIN pullsync_uids u ON u.ec_hash = e.ec_hash
                WHERE e.ec_hash IN (\(placeholders))
                """,
                part.map { .text($0) }
            )
            for row in rows {
                guard let hash = row.column("ec_hash")?.string else { continue }
                var entry = graph[hash] ?? WrittenEC(withdrawn: !(row.column("withdrawn_at")?.isNull ?? true))
                if let domain = row.column("source_domain")?.string {
                    entry.partners[domain] = (partnerUID(row), row.column("revoked_at")?.integer)
                }
                graph[hash] = entry
            }
        }
        return graph
    }

    /// Applies one EC's writes to `graph` as its own transaction would: each one that stands is
    /// added to `stored` (five values a row) and becomes what the batch's later writes see.
    private static func apply(
        _ writes: [UIDWrite],
        ecHash: String,
        to graph: inout [String: WrittenEC],
        storing stored: inout [SQLiteData]
    ) -> [WriteResult] {
        guard var entry = graph[ecHash] else { return writes.map { _ in .unknownEC } }
        if entry.withdrawn { return writes.map { _ in .withdrawn } }
        // One write per partner (the kernel's batches hold one per call).
        var results: [WriteResult] = []
        for write in writes {
            let current = entry.partners[write.sourceDomain]
            if let revokedAt = current?.revokedAt, revokedAt >= Self.int(write.plannedAt) {
                results.append(.revoked)
                continue
            }
            guard current?.uid == write.expected else {
                results.append(.conflict)
                continue
            }
            stored += [
                .text(ecHash), .text(write.sourceDomain), .text(write.value.uid),
                .integer(Self.int(write.value.syncedAt)),
                write.value.expiresAt.map { .integer(Self.int($0)) } ?? .null,
            ]
            entry.partners[write.sourceDomain] = (write.value, nil)
            results.append(.stored)
        }
        graph[ecHash] = entry
        return results
    }

    /// Creates the root entries of `roots`, in order, and tells which this created; one already
    /// there is read after it (as it is after the call, which is what is asked).
    private static func createRoots(
        _ roots: [Change.Root],
        on connection: SQLiteConnection
    ) async throws -> [(record: ECRecord, created: Bool)] {
        guard !roots.isEmpty else { return [] }
        let hashes = roots.map(\.edgeCookie.hashString)
        var values: [SQLiteData] = []
        values.reserveCapacity(roots.count * 11)
        for (hash, root) in zip(hashes, roots) {
            let at = SQLiteData.integer(int(root.at))
            values += [.text(hash), .text(root.edgeCookie.value), at, at] + consentValues(root.consent)
        }
        // New entries come back as they were stored (no UIDs yet): no second statement to read them.
        var inserted: [String: ECRecord] = [:]
        for statement in statements(values, columns: 11) {
            let rows = try await connection.query(
                """
                INSERT OR IGNORE INTO pullsync_ecs (ec_hash, ec_id, created_at, seen_at, \(consentColumns))
                VALUES \(statement.placeholders)
                RETURNING ec_hash, ec_id, created_at, seen_at, withdrawn_at, consent_digest
                """,
                statement.values
            )
            for row in rows {
                guard let hash = row.column("ec_hash")?.string else { continue }
                inserted[hash] = record(ecHash: hash, from: [row])
            }
        }
        var results: [(record: ECRecord, created: Bool)] = []
        results.reserveCapacity(roots.count)
        for hash in hashes {
            // The first of one EC's entries in the batch created it; any other found it there.
            if let created = inserted.removeValue(forKey: hash) {
                results.append((created, true))
            } else if let record = try await record(ecHash: hash, on: connection) {
                results.append((record, false))
            } else {
                throw SQLiteStoreError("the root entry of an EC is missing although it could not be created")
            }
        }
        return results
    }

    package func revoke(_ sourceDomains: [String], ecHash: String, at now: Timestamp, notifying: [String]) async throws
        -> [String]
    {
        guard !sourceDomains.isEmpty else { return [] }
        return try await transaction { connection in
            let root = try await connection.query(
                "SELECT withdrawn_at FROM pullsync_ecs WHERE ec_hash = ?1",
                [.text(ecHash)]
            )
            guard let row = root.first, row.column("withdrawn_at")?.isNull ?? true else { return [] }
            var forgotten: [String] = []
            for domain in sourceDomains {
                if let syncedAt = try await Self.uidSyncedAt(domain, ecHash: ecHash, on: connection) {
                    forgotten.append(domain)
                    if notifying.contains(domain) {
                        try await Self.enqueueOptOut(domain, ecHash: ecHash, uidSyncedAt: syncedAt, at: now, on: connection)
                    }
                }
                _ = try await connection.query(
                    """
                    INSERT INTO pullsync_uids (ec_hash, source_domain, uid, synced_at, expires_at, revoked_at)
                    VALUES (?1, ?2, NULL, ?3, NULL, ?3)
                    ON CONFLICT (ec_hash, source_domain) DO UPDATE
                    SET uid = NULL, expires_at = NULL, synced_at = excluded.synced_at, revoked_at = excluded.revoked_at
                    """,
                    [.text(ecHash), .text(domain), .integer(Self.int(now))]
                )
            }
            return forgotten
        }
    }

    package func markSeen(ecHash: String, at now: Timestamp, consent: ConsentSnapshot?) async throws {
        try await transaction { connection in
            _ = try await connection.query(
                "UPDATE pullsync_ecs SET seen_at = max(coalesce(seen_at, 0), ?2) WHERE ec_hash = ?1 AND withdrawn_at IS NULL",
                [.text(ecHash), .integer(Self.int(now))]
            )
            guard let consent else { return }
            _ = try await connection.query(
                """
                UPDATE pullsync_ecs SET (\(Self.consentColumns)) = (?2, ?3, ?4, ?5, ?6, ?7, ?8)
                WHERE ec_hash = ?1 AND withdrawn_at IS NULL AND (consent_at IS NULL OR consent_at <= ?3)
                """,
                [.text(ecHash)] + Self.consentValues(consent)
            )
        }
    }

    /// The consent snapshot's columns, in the order of ``consentValues(_:)``.
    static let consentColumns =
        "consent_digest, consent_at, consent_kept, consent_tcf, consent_gpp, consent_gpp_sid, consent_usp"

    private static func consentValues(_ snapshot: ConsentSnapshot?) -> [SQLiteData] {
        guard let snapshot else { return Array(repeating: .null, count: 7) }
        let strings = snapshot.strings
        func text(_ value: String?) -> SQLiteData { value.map(SQLiteData.text) ?? .null }
        return [
            .integer(Int(snapshot.digest)), .integer(int(snapshot.seenAt)), .integer(strings == nil ? 0 : 1),
            text(strings?.tcf), text(strings?.gpp), text(strings.map { ConsentSnapshot.encodeSections($0.gppSectionIDs) }),
            text(strings?.usPrivacy),
        ]
    }

    /// The consent snapshot in a row with ``consentColumns``; `nil` when none is kept.
    static func consentSnapshot(_ row: SQLiteRow) -> ConsentSnapshot? {
        guard let digest = row.column("consent_digest")?.integer, let at = row.column("consent_at")?.integer else {
            return nil
        }
        let strings =
            row.column("consent_kept")?.integer == 1
            ? ConsentStrings(
                tcf: row.column("consent_tcf")?.string,
                gpp: row.column("consent_gpp")?.string,
                gppSectionIDs: ConsentSnapshot.decodeSections(row.column("consent_gpp_sid")?.string ?? ""),
                usPrivacy: row.column("consent_usp")?.string
            ) : nil
        return ConsentSnapshot(strings: strings, seenAt: Timestamp(nanosecondsSinceEpoch: Int64(at)), digest: Int64(digest))
    }

    package func forget(uidsSyncedBefore: Timestamp, ecsSeenBefore: Timestamp, limit: Int) async throws -> RetentionBatch {
        try await transaction { connection in
            // ECs first: their UIDs go with them (ON DELETE CASCADE); not while an opt-out of
            // theirs is still to be delivered.
            let ecs = try await connection.query(
                """
                DELETE FROM pullsync_ecs WHERE ec_hash IN (
                    SELECT e.ec_hash FROM pullsync_ecs e WHERE e.seen_at < ?1 AND NOT EXISTS (
                        SELECT 1 FROM pullsync_optouts o WHERE o.ec_hash = e.ec_hash AND o.result IS NULL
                    ) LIMIT ?2
                ) RETURNING 1
                """,
                [.integer(Self.int(ecsSeenBefore)), .integer(max(0, limit))]
            ).count
            let uids = try await connection.query(
                """
                DELETE FROM pullsync_uids WHERE (ec_hash, source_domain) IN (
                    SELECT ec_hash, source_domain FROM pullsync_uids WHERE synced_at < ?1 LIMIT ?2
                ) RETURNING 1
                """,
                [.integer(Self.int(uidsSyncedBefore)), .integer(max(0, limit))]
            ).count
            return RetentionBatch(uids: uids, ecs: ecs)
        }
    }

    package func withdraw(ecHash: String, at now: Timestamp, notifying: [String]) async throws -> Bool {
        try await transaction { connection in
            // The consent snapshot goes too: nothing is done for a withdrawn EC.
            let known = try await connection.query(
                """
                UPDATE pullsync_ecs SET withdrawn_at = ?2, (\(Self.consentColumns)) = (NULL, NULL, NULL, NULL, NULL, NULL, NULL)
                WHERE ec_hash = ?1 RETURNING ec_hash
                """,
                [.text(ecHash), .integer(Self.int(now))]
            )
            guard !known.isEmpty else { return false }
            for domain in notifying {
                guard let syncedAt = try await Self.uidSyncedAt(domain, ecHash: ecHash, on: connection) else { continue }
                try await Self.enqueueOptOut(domain, ecHash: ecHash, uidSyncedAt: syncedAt, at: now, on: connection)
            }
            _ = try await connection.query("DELETE FROM pullsync_uids WHERE ec_hash = ?1", [.text(ecHash)])
            return true
        }
    }
}
