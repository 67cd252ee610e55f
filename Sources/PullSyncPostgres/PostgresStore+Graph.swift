import PostgresNIO
package import PullSyncKernel
package import PullSyncStorage

// IdentityGraph: records, root entries, conditional UID writes, snapshots, revocations,
// withdrawals and retention.
extension PostgresStore {
    /// ec_id, created_at, withdrawn_at, source_domain, uid, synced_at, expires_at, seen_at, consent_digest.
    private typealias RecordRow = (String, Int64, Int64?, String?, String?, Int64?, Int64?, Int64?, Int64?)

    package func record(ecHash: String) async throws -> ECRecord? {
        let rows = try await run(
            """
            SELECT e.ec_id, e.created_at, e.withdrawn_at, u.source_domain, u.uid, u.synced_at, u.expires_at, e.seen_at,
                   e.consent_digest
            FROM pullsync_ecs e LEFT JOIN pullsync_uids u ON u.ec_hash = e.ec_hash
            WHERE e.ec_hash = \(ecHash)
            """
        ) { rows in try await Self.collect(rows) }
        return Self.record(ecHash: ecHash, rows: rows)
    }

    private static func collect(_ rows: PostgresRowSequence) async throws -> [RecordRow] {
        var collected: [RecordRow] = []
        for try await row in rows.decode(RecordRow.self) { collected.append(row) }
        return collected
    }

    private static func record(ecHash: String, rows: [RecordRow]) -> ECRecord? {
        guard let first = rows.first else { return nil }
        var record = ECRecord(
            ecHash: ecHash,
            ecID: first.0,
            createdAt: Timestamp(nanosecondsSinceEpoch: first.1),
            seenAt: first.7.map { Timestamp(nanosecondsSinceEpoch: $0) },
            withdrawn: first.2 != nil,
            consentDigest: first.8
        )
        for row in rows {
            guard let domain = row.3, let uid = row.4, let syncedAt = row.5 else { continue }
            record.partners[domain] = PartnerUID(
                uid: uid,
                syncedAt: Timestamp(nanosecondsSinceEpoch: syncedAt),
                expiresAt: row.6.map { Timestamp(nanosecondsSinceEpoch: $0) }
            )
        }
        return record
    }

    package func createRoot(for edgeCookie: EdgeCookie, at now: Timestamp, consent: ConsentSnapshot?) async throws
        -> ECRecord
    {
        try await createRoot(for: edgeCookie, at: now, consent: consent, admitting: [], lease: nil).record
    }

    /// One statement: the root entry inserted, and, only if this inserted it, the batch counted
    /// as ``admit(_:lease:at:)`` counts it (see
    /// ``CombinedStore/createRoot(for:at:consent:admitting:lease:)``).
    package func createRoot(
        for edgeCookie: EdgeCookie,
        at now: Timestamp,
        consent: ConsentSnapshot?,
        admitting requests: [RateLimitRequest],
        lease: CallLease?
    ) async throws -> (record: ECRecord, admissions: [LeasedAdmission]?) {
        let hash = edgeCookie.hashString
        let batch = RateBatch(requests, lease: lease, at: now)
        // Inserted now (no UIDs yet, and the batch counted), or already there (read in the
        // same statement, nothing counted).
        let statement = CreateRootAdmitting(
            ecHash: hash,
            ecID: edgeCookie.value,
            createdAt: now.nanosecondsSinceEpoch,
            consent: Snapshot(consent),
            batch: batch
        )
        let rows = try await run(prepared: statement) { rows in
            var collected: [(RecordRow, counted: [String]?, leased: [String]?)] = []
            for try await row in rows {
                collected.append(((row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8), row.9, row.10))
            }
            return collected
        }
        if let record = Self.record(ecHash: hash, rows: rows.map(\.0)) {
            guard let counted = rows.first?.counted, let leased = rows.first?.leased else { return (record, nil) }
            return (record, batch.admissions(counted: Set(counted), leased: Set(leased)))
        }
        // Another node inserted it after this statement's snapshot: it is there now.
        guard let record = try await record(ecHash: hash) else {
            throw PostgresStoreError("the root entry of an EC is missing right after it was created")
        }
        return (record, nil)
    }

    /// It counts due calls with the record.
    package var countsDueCalls: Bool { true }

    /// One statement: the record read, and the first `limit` due calls of `calls` counted as
    /// ``admit(_:lease:at:)`` counts them (see
    /// ``CombinedStore/record(ecHash:admittingDue:limit:lease:at:)``). Due as
    /// `PartnerUID.isFresh` decides, as the backfill's candidates are: no UID, past its expiry,
    /// or (no expiry) learned longer than the TTL ago.
    package func record(
        ecHash: String,
        admittingDue calls: [DueCall],
        limit: Int,
        lease: DueLease?,
        at now: Timestamp
    ) async throws -> (record: ECRecord?, admissions: [LeasedAdmission?]) {
        guard !calls.isEmpty, limit > 0 else {
            return (try await record(ecHash: ecHash), Array(repeating: nil, count: calls.count))
        }
        // The lease's end is worked out in the statement, from the calls it tries.
        let batch = RateBatch(calls.map(\.request), lease: nil, at: now)
        let statement = RecordAdmittingDue(
            batch: batch,
            domains: calls.map(\.sourceDomain),
            staleBefore: calls.map { (now - $0.ttl).nanosecondsSinceEpoch },
            timeouts: calls.map(\.timeout.nanoseconds),
            ecHash: ecHash,
            limit: Int64(clamping: limit),
            holder: lease?.holder,
            margin: lease?.margin.nanoseconds
        )
        let rows = try await run(prepared: statement) { rows in
            var collected: [(RecordRow, tried: [String], counted: [String], leased: [String])] = []
            for try await row in rows {
                collected.append(((row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8), row.9, row.10, row.11))
            }
            return collected
        }
        guard let record = Self.record(ecHash: ecHash, rows: rows.map(\.0)), let first = rows.first else {
            return (nil, Array(repeating: nil, count: calls.count))
        }
        let tried = Set(first.tried)
        let admissions = batch.admissions(counted: Set(first.counted), leased: Set(first.leased))
        return (record, zip(batch.keys, admissions).map { key, admission in tried.contains(key) ? admission : nil })
    }

    /// Writes, and gives back `holder`'s leases on `leaseKeys` in the same statement (those on rows
    /// another statement holds at that moment lapse on their own instead).
    package func write(
        _ writes: [UIDWrite],
        ecHash: String,
        releasing leaseKeys: [RateLimitKey],
        holder: String
    ) async throws -> [WriteResult] {
        try await write(writes, ecHash: ecHash, releasing: (leaseKeys.map(\.description), holder))
    }

    package func write(_ writes: [UIDWrite], ecHash: String) async throws -> [WriteResult] {
        try await write(writes, ecHash: ecHash, releasing: nil)
    }

    private func write(_ writes: [UIDWrite], ecHash: String, releasing: (keys: [String], holder: String)?) async throws
        -> [WriteResult]
    {
        // Leases given back without a write (the request's last call stored no UID) share the
        // statement of the writes around them too.
        guard !writes.isEmpty || !(releasing?.keys.isEmpty ?? true) else { return [] }
        let pending = PendingWrite(
            ecHash: ecHash,
            writes: writes,
            leaseKeys: releasing?.keys ?? [],
            leaseHolder: releasing?.holder ?? ""
        )
        return try await writeGroup.submit(pending) { batch in await storeTogether(batch) }
    }

    /// Stores `batch` in one statement. Two writes of one EC's UID for one partner would be one
    /// row's update in it: the later one goes in a statement after it. If the statement fails
    /// for something PostgreSQL said (a deadlock with another node, say), each request's writes
    /// go again in a statement of their own, so that one EC's can't fail another's; if it failed
    /// for want of an answer, the others would too, and they fail with it.
    private func storeTogether(_ batch: [PendingWrite]) async -> [Result<[WriteResult], any Error>] {
        var results = [Result<[WriteResult], any Error>?](repeating: nil, count: batch.count)
        var left = Array(batch.indices)
        while !left.isEmpty {
            var written = Set<UIDRow>()
            var now: [Int] = []
            var later: [Int] = []
            for index in left {
                let rows = batch[index].writes.map { UIDRow(ecHash: batch[index].ecHash, domain: $0.sourceDomain) }
                if rows.contains(where: written.contains) {
                    later.append(index)
                } else {
                    written.formUnion(rows)
                    now.append(index)
                }
            }
            do {
                let stored = try await store(now.map { batch[$0] })
                for (index, writes) in zip(now, stored) { results[index] = .success(writes) }
            } catch let error as PSQLError where now.count > 1 && error.serverInfo != nil && !Task.isCancelled {
                for index in now {
                    do {
                        results[index] = .success(try await store([batch[index]])[0])
                    } catch {
                        results[index] = .failure(error)
                    }
                }
            } catch {
                for index in now { results[index] = .failure(error) }
            }
            left = later
        }
        return results.map { $0 ?? .failure(PostgresStoreError("a UID write was left out of its group")) }
    }

    /// Stores the writes of `pending` (no EC's UID for one partner twice) and gives back their
    /// requests' leases, in one statement; one result per request.
    private func store(_ pending: [PendingWrite]) async throws -> [[WriteResult]] {
        // In one order on every node: rows are then locked in that order wherever the plan
        // follows it, so two nodes' statements rarely wait on each other crosswise.
        let writes = pending.flatMap { request in request.writes.map { (request.ecHash, $0) } }.sorted {
            ($0.0, $0.1.sourceDomain) < ($1.0, $1.1.sourceDomain)
        }
        // NULL can't travel inside these arrays: -1 stands for "no expiry", and the expected
        // values of a write that expects no entry are ignored.
        let ecs = writes.map(\.0)
        let domains = writes.map(\.1.sourceDomain)
        let uids = writes.map(\.1.value.uid)
        let synced = writes.map(\.1.value.syncedAt.nanosecondsSinceEpoch)
        let expires = writes.map { $0.1.value.expiresAt?.nanosecondsSinceEpoch ?? -1 }
        let hasExpected = writes.map { $0.1.expected != nil }
        let expectedUIDs = writes.map { $0.1.expected?.uid ?? "" }
        let expectedSynced = writes.map { $0.1.expected?.syncedAt.nanosecondsSinceEpoch ?? 0 }
        let expectedExpires = writes.map { $0.1.expected?.expiresAt?.nanosecondsSinceEpoch ?? -1 }
        let planned = writes.map(\.1.plannedAt.nanosecondsSinceEpoch)
        let leaseKeys = pending.flatMap(\.leaseKeys)
        let leaseHolders = pending.flatMap { request in request.leaseKeys.map { _ in request.leaseHolder } }
        // The root rows are share-locked (in one order, for any other statement that locks
        // several): a withdrawal waits for this write and then deletes what it stored, or went
        // first and this write sees it (locking reads see the latest committed row). A
        // revocation's row (no UID) is only replaced by a write planned after it; the update
        // re-checks the row once it holds its lock.
        let rows = try await run(
            """
            WITH root AS (
                SELECT ec_hash, withdrawn_at FROM pullsync_ecs WHERE ec_hash = ANY(\(Array(Set(ecs)))::text[])
                ORDER BY ec_hash FOR SHARE
            ), open AS (
                SELECT ec_hash FROM root WHERE withdrawn_at IS NULL
            ), released AS (
                -- Rows an admission or the sweep holds are skipped, not waited for: the UIDs must
                -- not wait or deadlock on them, and a lease left behind lapses on its own.
                UPDATE pullsync_rate SET lease_holder = NULL, lease_until = NULL
                WHERE key IN (
                    SELECT key FROM pullsync_rate
                    WHERE (key, lease_holder) IN (SELECT * FROM unnest(\(leaseKeys)::text[], \(leaseHolders)::text[]))
                    ORDER BY key
                    FOR UPDATE SKIP LOCKED
                )
            ), input AS (
                SELECT * FROM unnest(
                    \(ecs)::text[], \(domains)::text[], \(uids)::text[], \(synced)::bigint[], \(expires)::bigint[],
                    \(hasExpected)::boolean[], \(expectedUIDs)::text[], \(expectedSynced)::bigint[],
                    \(expectedExpires)::bigint[], \(planned)::bigint[]
                ) AS w(
                    ec_hash, domain, uid, synced_at, expires_at, has_expected, expected_uid, expected_synced,
                    expected_expires, planned_at
                )
                WHERE w.ec_hash IN (SELECT ec_hash FROM open)
            ), replaced AS (
                UPDATE pullsync_uids u
                SET uid = w.uid, synced_at = w.synced_at, expires_at = NULLIF(w.expires_at, -1), revoked_at = NULL
                FROM input w
                WHERE u.ec_hash = w.ec_hash AND u.source_domain = w.domain AND NOT w.has_expected
                    AND u.uid IS NULL AND u.revoked_at < w.planned_at
                RETURNING u.ec_hash, u.source_domain
            ), inserted AS (
                INSERT INTO pullsync_uids (ec_hash, source_domain, uid, synced_at, expires_at)
                SELECT w.ec_hash, w.domain, w.uid, w.synced_at, NULLIF(w.expires_at, -1)
                FROM input w
                WHERE NOT w.has_expected
                ORDER BY w.ec_hash, w.domain
                ON CONFLICT (ec_hash, source_domain) DO NOTHING
                RETURNING ec_hash, source_domain
            ), updated AS (
                UPDATE pullsync_uids u
                SET uid = w.uid, synced_at = w.synced_at, expires_at = NULLIF(w.expires_at, -1)
                FROM input w
                WHERE u.ec_hash = w.ec_hash AND u.source_domain = w.domain AND w.has_expected
                    AND u.uid = w.expected_uid AND u.synced_at = w.expected_synced
                    AND u.expires_at IS NOT DISTINCT FROM NULLIF(w.expected_expires, -1)
                RETURNING u.ec_hash, u.source_domain
            )
            SELECT CASE WHEN withdrawn_at IS NULL THEN 'open' ELSE 'withdrawn' END, ec_hash, '' FROM root
            UNION ALL SELECT 'stored', ec_hash, source_domain FROM inserted
            UNION ALL SELECT 'stored', ec_hash, source_domain FROM updated
            UNION ALL SELECT 'stored', ec_hash, source_domain FROM replaced
            UNION ALL SELECT 'revoked', w.ec_hash, w.domain FROM input w
                JOIN pullsync_uids u ON u.ec_hash = w.ec_hash AND u.source_domain = w.domain
                WHERE u.uid IS NULL AND u.revoked_at >= w.planned_at
            """
        ) { rows in
            var collected: [(String, String, String)] = []
            for try await row in rows.decode((String, String, String).self) { collected.append(row) }
            return collected
        }
        var open = Set<String>()
        var withdrawn = Set<String>()
        var stored = Set<UIDRow>()
        var revoked = Set<UIDRow>()
        for (kind, ecHash, domain) in rows {
            switch kind {
            case "open": open.insert(ecHash)
            case "withdrawn": withdrawn.insert(ecHash)
            case "stored": stored.insert(UIDRow(ecHash: ecHash, domain: domain))
            default: revoked.insert(UIDRow(ecHash: ecHash, domain: domain))
            }
        }
        return pending.map { request in
            if withdrawn.contains(request.ecHash) { return request.writes.map { _ in .withdrawn } }
            guard open.contains(request.ecHash) else { return request.writes.map { _ in .unknownEC } }
            return request.writes.map { write in
                let row = UIDRow(ecHash: request.ecHash, domain: write.sourceDomain)
                if stored.contains(row) { return .stored }
                return revoked.contains(row) ? .revoked : .conflict
            }
        }
    }

    /// A row of `pullsync_uids`: one EC's UID for one partner.
    private struct UIDRow: Hashable {
        var ecHash: String
        var domain: String
    }

    /// One request's UID writes, and the leases it gives back with them.
    struct PendingWrite: Sendable {
        var ecHash: String
        var writes: [UIDWrite]
        var leaseKeys: [String]
        var leaseHolder: String
    }

    package func markSeen(ecHash: String, at now: Timestamp, consent: ConsentSnapshot?) async throws {
        let at = now.nanosecondsSinceEpoch
        guard let consent else {
            try await run(
                """
                UPDATE pullsync_ecs SET seen_at = greatest(coalesce(seen_at, 0), \(at))
                WHERE ec_hash = \(ecHash) AND withdrawn_at IS NULL
                """
            ) { rows in for try await _ in rows {} }
            return
        }
        let kept = Snapshot(consent)
        // The snapshot only if it is not older than the stored one (two requests of one page
        // load may arrive in either order); the visit either way. An integer of ours, inlined.
        let newer = "(consent_at IS NULL OR consent_at <= \(consent.seenAt.nanosecondsSinceEpoch))"
        try await run(
            """
            UPDATE pullsync_ecs SET seen_at = greatest(coalesce(seen_at, 0), \(at)),
                consent_digest = CASE WHEN \(unescaped: newer) THEN \(kept.digest) ELSE consent_digest END,
                consent_kept = CASE WHEN \(unescaped: newer) THEN \(kept.kept) ELSE consent_kept END,
                consent_tcf = CASE WHEN \(unescaped: newer) THEN \(kept.tcf) ELSE consent_tcf END,
                consent_gpp = CASE WHEN \(unescaped: newer) THEN \(kept.gpp) ELSE consent_gpp END,
                consent_gpp_sid = CASE WHEN \(unescaped: newer) THEN \(kept.sections) ELSE consent_gpp_sid END,
                consent_usp = CASE WHEN \(unescaped: newer) THEN \(kept.usp) ELSE consent_usp END,
                consent_at = CASE WHEN \(unescaped: newer) THEN \(kept.at) ELSE consent_at END
            WHERE ec_hash = \(ecHash) AND withdrawn_at IS NULL
            """
        ) { rows in for try await _ in rows {} }
    }

    /// A consent snapshot as its columns keep it (all NULL for none).
    struct Snapshot {
        var digest: Int64?
        var at: Int64?
        var kept: Bool?
        var tcf: String?
        var gpp: String?
        var sections: String?
        var usp: String?

        init(_ snapshot: ConsentSnapshot?) {
            guard let snapshot else { return }
            digest = snapshot.digest
            at = snapshot.seenAt.nanosecondsSinceEpoch
            kept = snapshot.strings != nil
            tcf = snapshot.strings?.tcf
            gpp = snapshot.strings?.gpp
            sections = snapshot.strings.map { ConsentSnapshot.encodeSections($0.gppSectionIDs) }
            usp = snapshot.strings?.usPrivacy
        }

        /// The snapshot these columns hold; `nil` when they hold none.
        var snapshot: ConsentSnapshot? {
            guard let digest, let at else { return nil }
            let strings =
                kept == true
                ? ConsentStrings(
                    tcf: tcf,
                    gpp: gpp,
                    gppSectionIDs: ConsentSnapshot.decodeSections(sections ?? ""),
                    usPrivacy: usp
                ) : nil
            return ConsentSnapshot(strings: strings, seenAt: Timestamp(nanosecondsSinceEpoch: at), digest: digest)
        }
    }

    package func forget(uidsSyncedBefore: Timestamp, ecsSeenBefore: Timestamp, limit: Int) async throws -> RetentionBatch {
        // Two statements: ECs first (their UIDs go with them, ON DELETE CASCADE), then UIDs.
        // Not an EC with an opt-out still to be delivered.
        let pending = "NOT EXISTS (SELECT 1 FROM pullsync_optouts o WHERE o.ec_hash = t.ec_hash AND o.result IS NULL)"
        let ecs = try await deleteBatch("pullsync_ecs", "seen_at", before: ecsSeenBefore, limit: limit, unless: pending)
        let uids = try await deleteBatch("pullsync_uids", "synced_at", before: uidsSyncedBefore, limit: limit)
        return RetentionBatch(uids: uids, ecs: ecs)
    }

    /// Deletes at most `limit` rows of `table` whose `column` is before `time` (and that meet
    /// `condition` on `t`, the row), found by the index on it; returns how many. (Names and the
    /// condition are this file's constants, never input.)
    private func deleteBatch(
        _ table: String,
        _ column: String,
        before time: Timestamp,
        limit: Int,
        unless condition: String = "true"
    ) async throws -> Int {
        var binds = PostgresBindings()
        binds.append(time.nanosecondsSinceEpoch)
        binds.append(max(0, limit))
        let sql = """
            WITH gone AS (
                DELETE FROM \(table)
                WHERE ctid = ANY(ARRAY(SELECT t.ctid FROM \(table) t WHERE t.\(column) < $1 AND \(condition) LIMIT $2))
                RETURNING 1
            )
            SELECT count(*)::integer FROM gone
            """
        return try await run(PostgresQuery(unsafeSQL: sql, binds: binds)) { rows in
            var count = 0
            for try await value in rows.decode(Int.self) { count = value }
            return count
        }
    }

    package func revoke(_ sourceDomains: [String], ecHash: String, at now: Timestamp, notifying: [String]) async throws
        -> [String]
    {
        guard !sourceDomains.isEmpty else { return [] }
        let at = now.nanosecondsSinceEpoch
        // The root row locked first (as a withdrawal does): a write holding it commits its UID
        // before the second statement reads which UIDs there are.
        return try await transaction(
            [
                "SELECT 1 FROM pullsync_ecs WHERE ec_hash = \(ecHash) FOR UPDATE",
                """
            WITH root AS (
                SELECT ec_hash FROM pullsync_ecs WHERE ec_hash = \(ecHash) AND withdrawn_at IS NULL FOR SHARE
            ), had AS (
                SELECT source_domain, synced_at FROM pullsync_uids
                WHERE ec_hash = \(ecHash) AND source_domain = ANY(\(sourceDomains)::text[]) AND uid IS NOT NULL
            ), marked AS (
                INSERT INTO pullsync_uids (ec_hash, source_domain, uid, synced_at, expires_at, revoked_at)
                SELECT \(ecHash), d, NULL, \(at), NULL, \(at)
                FROM unnest(\(sourceDomains)::text[]) AS d
                WHERE EXISTS (SELECT 1 FROM root)
                ORDER BY d
                ON CONFLICT (ec_hash, source_domain) DO UPDATE
                SET uid = NULL, expires_at = NULL, synced_at = excluded.synced_at, revoked_at = excluded.revoked_at
                RETURNING source_domain
            ), queued AS (
                INSERT INTO pullsync_optouts (ec_hash, source_domain, ec_id, enqueued_at, next_at, uid_synced_at)
                SELECT \(ecHash), h.source_domain, e.ec_id, \(at), \(at), h.synced_at
                FROM had h JOIN pullsync_ecs e ON e.ec_hash = \(ecHash)
                WHERE h.source_domain = ANY(\(notifying)::text[]) AND EXISTS (SELECT 1 FROM marked)
                \(unescaped: Self.requeueNewer)
            )
            SELECT ARRAY(SELECT source_domain FROM had WHERE EXISTS (SELECT 1 FROM marked))
            """,
            ]
        ) { rows in
            var forgotten: [String] = []
            for try await (domains) in rows.decode([String].self) { forgotten = domains }
            return forgotten
        }
    }

    package func withdraw(ecHash: String, at now: Timestamp, notifying: [String]) async throws -> Bool {
        let at = now.nanosecondsSinceEpoch
        // First the root row's lock: a write holding it (FOR SHARE) commits its UID before the
        // second statement reads the UIDs, which then forgets it and tells its partner. (In one
        // statement, the UID table would be read as it was before the wait.)
        return try await transaction(
            [
                "SELECT 1 FROM pullsync_ecs WHERE ec_hash = \(ecHash) FOR UPDATE",
                """
            WITH marked AS (
                UPDATE pullsync_ecs SET withdrawn_at = \(at),
                    consent_digest = NULL, consent_at = NULL, consent_kept = NULL, consent_tcf = NULL,
                    consent_gpp = NULL, consent_gpp_sid = NULL, consent_usp = NULL
                WHERE ec_hash = \(ecHash) RETURNING ec_hash, ec_id
            ), queued AS (
                -- The partners told: those with an opt-out endpoint whose UID the EC held.
                INSERT INTO pullsync_optouts (ec_hash, source_domain, ec_id, enqueued_at, next_at, uid_synced_at)
                SELECT m.ec_hash, u.source_domain, m.ec_id, \(at), \(at), u.synced_at
                FROM marked m JOIN pullsync_uids u ON u.ec_hash = m.ec_hash
                WHERE u.uid IS NOT NULL AND u.source_domain = ANY(\(notifying)::text[])
                \(unescaped: Self.requeueNewer)
            ), forgotten AS (
                DELETE FROM pullsync_uids WHERE ec_hash IN (SELECT ec_hash FROM marked) RETURNING 1
            )
            SELECT (SELECT count(*) FROM marked)::integer, (SELECT count(*) FROM forgotten)::integer
            """,
            ]
        ) { rows in
            var known = false
            for try await (marked, _) in rows.decode((Int, Int).self) { known = marked > 0 }
            return known
        }
    }
}

/// The statement of ``PostgresStore/record(ecHash:admittingDue:limit:lease:at:)``, prepared once
/// per connection: planning its CTEs took most of its cost (0.35 ms of planning against 0.2 ms of
/// running it, when nothing is due), and a prepared statement is planned once.
struct RecordAdmittingDue: PostgresPreparedStatement {
    static let sql = """
        WITH offered AS (
            SELECT o.* FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[])
                WITH ORDINALITY AS o(key, calls, window_ns, domain, stale_before, timeout_ns, position)
        ), due AS (
            SELECT o.* FROM offered o
            JOIN pullsync_ecs e ON e.ec_hash = $7 AND e.withdrawn_at IS NULL
            WHERE NOT EXISTS (
                SELECT 1 FROM pullsync_uids u
                WHERE u.ec_hash = e.ec_hash AND u.source_domain = o.domain AND u.uid IS NOT NULL
                  AND ((u.expires_at IS NOT NULL AND u.expires_at > $8) OR (u.expires_at IS NULL AND u.synced_at >= o.stale_before))
            )
            ORDER BY o.position
            LIMIT $9
        ), input AS (
            -- Leased as one batch: until the longest call tried, plus the margin.
            SELECT d.key, d.calls, d.window_ns, $8::bigint AS at, $10::text AS holder,
                   $8::bigint + max(d.timeout_ns) OVER () + $11::bigint AS until
            FROM due d
        ), \(PostgresStore.countedCTE)
        SELECT e.ec_id, e.created_at, e.withdrawn_at, u.source_domain, u.uid, u.synced_at, u.expires_at, e.seen_at,
               e.consent_digest, ARRAY(SELECT key FROM due), ARRAY(SELECT key FROM counted),
               ARRAY(SELECT i.key FROM input i WHERE \(PostgresStore.leasedElsewhere))
        FROM pullsync_ecs e LEFT JOIN pullsync_uids u ON u.ec_hash = e.ec_hash
        WHERE e.ec_hash = $7
        """
    static let bindingDataTypes: [PostgresDataType] = [
        .textArray, .int4Array, .int8Array, .textArray, .int8Array, .int8Array, .text, .int8, .int8, .text, .int8,
    ]
    typealias Row = (String, Int64, Int64?, String?, String?, Int64?, Int64?, Int64?, Int64?, [String], [String], [String])

    var batch: RateBatch
    var domains: [String]
    var staleBefore: [Int64]
    var timeouts: [Int64]
    var ecHash: String
    var limit: Int64
    /// The lease's holder and margin; `nil` takes no lease.
    var holder: String?
    var margin: Int64?

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 11)
        bindings.append(batch.keys)
        bindings.append(batch.calls)
        bindings.append(batch.windows)
        bindings.append(domains)
        bindings.append(staleBefore)
        bindings.append(timeouts)
        bindings.append(ecHash)
        bindings.append(batch.at)
        bindings.append(limit)
        bindings.append(holder)
        bindings.append(margin)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// The statement of ``PostgresStore/createRoot(for:at:consent:admitting:lease:)``, prepared once
/// per connection for the same reason as ``RecordAdmittingDue``: its CTEs cost more to plan than
/// to run.
struct CreateRootAdmitting: PostgresPreparedStatement {
    static let sql = """
        WITH inserted AS (
            INSERT INTO pullsync_ecs (
                ec_hash, ec_id, created_at, seen_at,
                consent_digest, consent_at, consent_kept, consent_tcf, consent_gpp, consent_gpp_sid, consent_usp
            )
            VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (ec_hash) DO NOTHING
            RETURNING ec_id, created_at, seen_at, consent_digest
        ), input AS (
            SELECT i.*, $14::bigint AS at, $15::text AS holder, $16::bigint AS until
            FROM unnest($11::text[], $12::integer[], $13::bigint[]) AS i(key, calls, window_ns)
            WHERE EXISTS (SELECT 1 FROM inserted)
        ), \(PostgresStore.countedCTE)
        SELECT ec_id, created_at, NULL::bigint, NULL::text, NULL::text, NULL::bigint, NULL::bigint, seen_at,
               consent_digest, ARRAY(SELECT key FROM counted),
               ARRAY(SELECT i.key FROM input i WHERE \(PostgresStore.leasedElsewhere))
        FROM inserted
        UNION ALL
        SELECT e.ec_id, e.created_at, e.withdrawn_at, u.source_domain, u.uid, u.synced_at, u.expires_at, e.seen_at,
               e.consent_digest, NULL::text[], NULL::text[]
        FROM pullsync_ecs e LEFT JOIN pullsync_uids u ON u.ec_hash = e.ec_hash
        WHERE e.ec_hash = $1 AND NOT EXISTS (SELECT 1 FROM inserted)
        """
    static let bindingDataTypes: [PostgresDataType] = [
        .text, .text, .int8, .int8, .int8, .bool, .text, .text, .text, .text,
        .textArray, .int4Array, .int8Array, .int8, .text, .int8,
    ]
    typealias Row = (String, Int64, Int64?, String?, String?, Int64?, Int64?, Int64?, Int64?, [String]?, [String]?)

    var ecHash: String
    var ecID: String
    var createdAt: Int64
    var consent: PostgresStore.Snapshot
    var batch: RateBatch

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 16)
        bindings.append(ecHash)
        bindings.append(ecID)
        bindings.append(createdAt)
        bindings.append(consent.digest)
        bindings.append(consent.at)
        bindings.append(consent.kept)
        bindings.append(consent.tcf)
        bindings.append(consent.gpp)
        bindings.append(consent.sections)
        bindings.append(consent.usp)
        bindings.append(batch.keys)
        bindings.append(batch.calls)
        bindings.append(batch.windows)
        bindings.append(batch.at)
        bindings.append(batch.holder)
        bindings.append(batch.until)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
