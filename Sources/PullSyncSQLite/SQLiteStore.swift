package import Logging
import NIOCore
import NIOPosix
package import PullSyncKernel
package import PullSyncStorage
import SQLiteNIO
import ServiceLifecycle
import Synchronization

/// The embedded, persistent store (`sqlite:PATH`): the identity graph, the rate-limit
/// counters and the EC-issuing secret in one SQLite file.
///
/// One process owns the file: every operation runs as one `BEGIN IMMEDIATE` transaction on
/// one connection, in turn, so each is atomic (and also against another process opening the
/// same file). Duplicate calls are prevented in process (the kernel's own bookkeeping); for
/// several nodes use the PostgreSQL store, whose leases are shared.
package final class SQLiteStore: PullSyncStore, CombinedStore {
    private let connection: SQLiteConnection
    private let turn = AsyncSemaphore(permits: 1)
    private let transactions = Atomic<Int>(0)
    /// UID writes waiting for the transaction that stores them (see ``write(_:ecHash:)``).
    private let queuedWrites = Mutex(WriteQueue())
    private let logger: Logger
    private let sweepInterval: Duration

    /// The file's path.
    package let path: String

    /// Opens (creating if needed) the database at `path` and brings its schema to the current
    /// version. Run it (it is a `Service`) while it is used: it sweeps expired rate-limit rows
    /// every `sweepInterval` and closes the file when the group shuts down.
    package static func open(
        path: String,
        sweepInterval: Duration = .seconds(60),
        logger: Logger = Logger(label: "pullsync.sqlite")
    ) async throws
        -> SQLiteStore
    {
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        let store = SQLiteStore(connection: connection, path: path, sweepInterval: sweepInterval, logger: logger)
        do {
            try await store.migrate()
        } catch {
            try? await connection.close()
            throw error
        }
        return store
    }

    private init(connection: SQLiteConnection, path: String, sweepInterval: Duration, logger: Logger) {
        self.connection = connection
        self.path = path
        self.sweepInterval = sweepInterval
        self.logger = logger
    }

    /// Sweeps expired rows until the group shuts down, then closes the file.
    package func run() async throws {
        try await StoreMaintenance(
            interval: sweepInterval,
            logger: logger,
            sweep: { try await self.sweep(at: $0) },
            close: { try await self.close() }
        ).run()
    }

    /// UID writes queued for the next transaction (tests).
    package var queuedWriteCount: Int { queuedWrites.withLock { $0.waiting.count } }

    /// Runs `body` while holding the store's turn, so that no transaction runs meanwhile (tests
    /// queue writes behind it).
    package func holdingTurn<T>(_ body: () async throws -> T) async throws -> T {
        try await turn.acquire()
        defer { turn.release() }
        return try await body()
    }

    /// Transactions run so far: the embedded store's "round trips".
    package var transactionCount: Int { transactions.load(ordering: .relaxed) }

    /// Closes the file. Later operations fail.
    package func close() async throws {
        // Closing must happen even when the caller is being cancelled (shutdown): the wait for
        // the running transaction runs in a task of its own, awaited here, so it can't be cut short.
        try await Task.detached { [turn, connection] in
            try await turn.acquire()
            defer { turn.release() }
            if !connection.isClosed { try await connection.close() }
        }.value
    }

    // MARK: Schema

    /// Schema versions, in order; version N is reached by running `migrations[N - 1]`.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE pullsync_meta (
                name TEXT PRIMARY KEY,
                value BLOB NOT NULL
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE pullsync_ecs (
                ec_hash TEXT PRIMARY KEY,
                ec_id TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                withdrawn_at INTEGER
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE pullsync_uids (
                ec_hash TEXT NOT NULL REFERENCES pullsync_ecs (ec_hash) ON DELETE CASCADE,
                source_domain TEXT NOT NULL,
                uid TEXT NOT NULL,
                synced_at INTEGER NOT NULL,
                expires_at INTEGER,
                PRIMARY KEY (ec_hash, source_domain)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE pullsync_rate_events (
                key TEXT NOT NULL,
                at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL
            )
            """,
            "CREATE INDEX pullsync_rate_events_key ON pullsync_rate_events (key, at)",
            "CREATE INDEX pullsync_rate_events_expiry ON pullsync_rate_events (expires_at)",
        ],
        // 2: backfill checkpoints, one per partner.
        [
            """
            CREATE TABLE pullsync_backfill (
                partner_id TEXT PRIMARY KEY,
                cursor TEXT NOT NULL,
                started_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                processed INTEGER NOT NULL,
                outcomes TEXT NOT NULL
            ) WITHOUT ROWID
            """
        ],
        // 3: per-partner revocation. A revoked pair keeps its row with no UID and the time of the
        // revocation, so a write planned before it stores nothing. SQLite can't drop NOT NULL in
        // place: the table is rebuilt.
        [
            """
            CREATE TABLE pullsync_uids_3 (
                ec_hash TEXT NOT NULL REFERENCES pullsync_ecs (ec_hash) ON DELETE CASCADE,
                source_domain TEXT NOT NULL,
                uid TEXT,
                synced_at INTEGER NOT NULL,
                expires_at INTEGER,
                revoked_at INTEGER,
                PRIMARY KEY (ec_hash, source_domain)
            ) WITHOUT ROWID
            """,
            """
            INSERT INTO pullsync_uids_3 (ec_hash, source_domain, uid, synced_at, expires_at)
            SELECT ec_hash, source_domain, uid, synced_at, expires_at FROM pullsync_uids
            """,
            "DROP TABLE pullsync_uids",
            "ALTER TABLE pullsync_uids_3 RENAME TO pullsync_uids",
            // Retention: UIDs by age, ECs by when they were last seen.
            "CREATE INDEX pullsync_uids_synced ON pullsync_uids (synced_at)",
            "ALTER TABLE pullsync_ecs ADD COLUMN seen_at INTEGER",
            "UPDATE pullsync_ecs SET seen_at = created_at",
            "CREATE INDEX pullsync_ecs_seen ON pullsync_ecs (seen_at)",
        ],
        // 4: each EC's consent snapshot (the signals last seen with it), for backfill.
        [
            "ALTER TABLE pullsync_ecs ADD COLUMN consent_digest INTEGER",
            "ALTER TABLE pullsync_ecs ADD COLUMN consent_at INTEGER",
            "ALTER TABLE pullsync_ecs ADD COLUMN consent_kept INTEGER",
            "ALTER TABLE pullsync_ecs ADD COLUMN consent_tcf TEXT",
            "ALTER TABLE pullsync_ecs ADD COLUMN consent_gpp TEXT",
            "ALTER TABLE pullsync_ecs ADD COLUMN consent_gpp_sid TEXT",
            "ALTER TABLE pullsync_ecs ADD COLUMN consent_usp TEXT",
        ],
        // 5: the opt-out outbox. A settled row stays (result set), so a pair is told once.
        [
            """
            CREATE TABLE pullsync_optouts (
                ec_hash TEXT NOT NULL REFERENCES pullsync_ecs (ec_hash) ON DELETE CASCADE,
                source_domain TEXT NOT NULL,
                ec_id TEXT NOT NULL,
                enqueued_at INTEGER NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_at INTEGER NOT NULL,
                result TEXT,
                settled_at INTEGER,
                uid_synced_at INTEGER NOT NULL,
                PRIMARY KEY (ec_hash, source_domain)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX pullsync_optouts_due ON pullsync_optouts (next_at) WHERE result IS NULL",
        ],
    ]

    /// The schema version this build writes.
    package static var schemaVersion: Int { migrations.count }

    private func migrate() async throws {
        // WAL: readers don't block the writer; NORMAL sync is durable across process crashes.
        _ = try await connection.query("PRAGMA journal_mode = WAL")
        _ = try await connection.query("PRAGMA synchronous = NORMAL")
        _ = try await connection.query("PRAGMA foreign_keys = ON")
        try await transaction { connection in
            let version = try await connection.query("PRAGMA user_version").first?.column("user_version")?.integer ?? 0
            guard version <= Self.migrations.count else {
                throw SQLiteStoreError(
                    "the database at \(self.path) has schema version \(version), newer than this build's \(Self.migrations.count)"
                )
            }
            for next in Int(version)..<Self.migrations.count {
                for statement in Self.migrations[next] { _ = try await connection.query(statement) }
                _ = try await connection.query("PRAGMA user_version = \(next + 1)")
            }
        }
    }

    /// UID writes waiting for a transaction, and whether a caller is storing them.
    private struct WriteQueue: ~Copyable {
        var waiting: [QueuedWrite] = []
        var leading = false
    }

    private struct QueuedWrite: Sendable {
        var ecHash: String
        var writes: [UIDWrite]
        /// `nil` for the leader's own write.
        var continuation: CheckedContinuation<WriteTurn, any Error>?
    }

    private enum WriteTurn: Sendable {
        /// Nobody was storing: this caller stores the queue.
        case lead
        /// A leader stored the write.
        case stored([WriteResult])
    }

    /// Runs `body` as one immediate transaction, after every earlier one (`holdingTurn`: the
    /// caller has taken the turn already; it is given back here either way).
    private func transaction<T: Sendable>(
        holdingTurn: Bool = false,
        _ body: @Sendable (SQLiteConnection) async throws -> T
    ) async throws -> T {
        if !holdingTurn { try await turn.acquire() }
        defer { turn.release() }
        transactions.add(1, ordering: .relaxed)
        _ = try await connection.query("BEGIN IMMEDIATE")
        do {
            let result = try await body(connection)
            _ = try await connection.query("COMMIT")
            return result
        } catch {
            _ = try? await connection.query("ROLLBACK")
            throw error
        }
    }

    // MARK: IdentityGraph

    package func record(ecHash: String) async throws -> ECRecord? {
        try await transaction { connection in try await Self.record(ecHash: ecHash, on: connection) }
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
        try await transaction { connection in
            try await Self.createRoot(for: edgeCookie, at: now, consent: consent, on: connection).record
        }
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
        try await transaction { connection in
            let (record, created) = try await Self.createRoot(for: edgeCookie, at: now, consent: consent, on: connection)
            guard created else { return (record, nil) }
            return (record, Self.leased(try await Self.acquire(requests, at: now, on: connection)))
        }
    }

    private static func createRoot(
        for edgeCookie: EdgeCookie,
        at now: Timestamp,
        consent: ConsentSnapshot?,
        on connection: SQLiteConnection
    ) async throws -> (record: ECRecord, created: Bool) {
        let hash = edgeCookie.hashString
        let inserted = try await connection.query(
            """
            INSERT OR IGNORE INTO pullsync_ecs (ec_hash, ec_id, created_at, seen_at, \(consentColumns))
            VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
            RETURNING ec_hash
            """,
            [.text(hash), .text(edgeCookie.value), .integer(int(now))] + consentValues(consent)
        )
        guard let record = try await record(ecHash: hash, on: connection) else {
            throw SQLiteStoreError("the root entry just created for an EC is missing")
        }
        return (record, !inserted.isEmpty)
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

    /// Writes arriving while another transaction runs wait for the next one together: one
    /// transaction stores every write queued by the time its turn comes (group commit), for
    /// any EC. Each EC's writes are applied as a transaction of their own would apply them.
    package func write(_ writes: [UIDWrite], ecHash: String) async throws -> [WriteResult] {
        guard !writes.isEmpty else { return [] }
        let place: WriteTurn = try await withCheckedThrowingContinuation { continuation in
            // Deciding and queueing under one lock: no write can slip in after a leader's last look.
            let leads = queuedWrites.withLock { queue in
                let leads = !queue.leading
                queue.leading = true
                // The leader's own write carries no continuation: it learns its results in the loop.
                queue.waiting.append(QueuedWrite(ecHash: ecHash, writes: writes, continuation: leads ? nil : continuation))
                return leads
            }
            if leads { continuation.resume(returning: .lead) }
        }
        switch place {
        case .stored(let results): return results
        case .lead: break
        }
        // This caller stores the queue as it is when its transaction's turn comes, its own write
        // among it, then hands the queue to the first write that arrived meanwhile.
        do {
            try await turn.acquire()
        } catch {
            // Cancelled before its turn: this write fails, the queue goes on without it.
            queuedWrites.withLock { queue in queue.waiting.removeAll { $0.continuation == nil } }
            handOverWriteQueue()
            throw error
        }
        let batch = queuedWrites.withLock { queue in
            defer { queue.waiting.removeAll() }
            return queue.waiting
        }
        let results: [Result<[WriteResult], any Error>]
        do {
            let applied = try await transaction(holdingTurn: true) { connection in
                var applied: [[WriteResult]] = []
                for queued in batch {
                    applied.append(try await Self.apply(queued.writes, ecHash: queued.ecHash, on: connection))
                }
                return applied
            }
            results = applied.map { .success($0) }
        } catch where batch.count > 1 && !Task.isCancelled {
            // One EC's writes must not fail another's: each again in a transaction of its own.
            var each: [Result<[WriteResult], any Error>] = []
            for queued in batch {
                do {
                    each.append(
                        .success(
                            try await transaction { connection in
                                try await Self.apply(queued.writes, ecHash: queued.ecHash, on: connection)
                            }
                        )
                    )
                } catch {
                    each.append(.failure(error))
                }
            }
            results = each
        } catch {
            results = batch.map { _ in .failure(error) }
        }
        handOverWriteQueue()
        var own: Result<[WriteResult], any Error> = .success([])
        for (queued, result) in zip(batch, results) {
            guard let continuation = queued.continuation else {
                own = result
                continue
            }
            continuation.resume(with: result.map { .stored($0) })
        }
        return try own.get()
    }

    /// Makes the first queued write the queue's leader, or marks the queue idle when it is empty.
    private func handOverWriteQueue() {
        let next = queuedWrites.withLock { queue -> CheckedContinuation<WriteTurn, any Error>? in
            guard !queue.waiting.isEmpty else {
                queue.leading = false
                return nil
            }
            defer { queue.waiting[0].continuation = nil }
            return queue.waiting[0].continuation
        }
        next?.resume(returning: .lead)
    }

    /// Applies one EC's writes inside a transaction.
    private static func apply(_ writes: [UIDWrite], ecHash: String, on connection: SQLiteConnection) async throws
        -> [WriteResult]
    {
        let root = try await connection.query(
            "SELECT withdrawn_at FROM pullsync_ecs WHERE ec_hash = ?1",
            [.text(ecHash)]
        )
        guard let row = root.first else { return writes.map { _ in .unknownEC } }
        if !(row.column("withdrawn_at")?.isNull ?? true) { return writes.map { _ in .withdrawn } }
        var results: [WriteResult] = []
        for write in writes {
            let row = try await connection.query(
                """
                SELECT uid, synced_at, expires_at, revoked_at FROM pullsync_uids
                WHERE ec_hash = ?1 AND source_domain = ?2
                """,
                [.text(ecHash), .text(write.sourceDomain)]
            ).first
            if let revokedAt = row?.column("revoked_at")?.integer, revokedAt >= Self.int(write.plannedAt) {
                results.append(.revoked)
                continue
            }
            guard row.flatMap(Self.partnerUID) == write.expected else {
                results.append(.conflict)
                continue
            }
            _ = try await connection.query(
                """
                INSERT INTO pullsync_uids (ec_hash, source_domain, uid, synced_at, expires_at)
                VALUES (?1, ?2, ?3, ?4, ?5)
                ON CONFLICT (ec_hash, source_domain) DO UPDATE
                SET uid = excluded.uid, synced_at = excluded.synced_at, expires_at = excluded.expires_at,
                    revoked_at = NULL
                """,
                [
                    .text(ecHash), .text(write.sourceDomain), .text(write.value.uid),
                    .integer(Self.int(write.value.syncedAt)),
                    write.value.expiresAt.map { .integer(Self.int($0)) } ?? .null,
                ]
            )
            results.append(.stored)
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
    private static let consentColumns =
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
    private static func consentSnapshot(_ row: SQLiteRow) -> ConsentSnapshot? {
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

    // MARK: OptOutOutbox

    /// When the EC's UID of `domain` was learned; `nil` when it holds none.
    private static func uidSyncedAt(_ domain: String, ecHash: String, on connection: SQLiteConnection) async throws
        -> SQLiteInt64?
    {
        try await connection.query(
            "SELECT synced_at FROM pullsync_uids WHERE ec_hash = ?1 AND source_domain = ?2 AND uid IS NOT NULL",
            [.text(ecHash), .text(domain)]
        ).first?.column("synced_at")?.integer.map { SQLiteInt64($0) }
    }

    /// Puts the opt-out of (`domain`, EC) in the outbox, about the UID learned at `uidSyncedAt`:
    /// unless one is pending, or one was settled about that UID or a newer one.
    private static func enqueueOptOut(
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

    // MARK: RateLimiter

    package func acquire(_ requests: [RateLimitRequest], at now: Timestamp) async throws -> [Bool] {
        guard !requests.isEmpty else { return [] }
        return try await transaction { connection in try await Self.acquire(requests, at: now, on: connection) }
    }

    private static func acquire(
        _ requests: [RateLimitRequest],
        at now: Timestamp,
        on connection: SQLiteConnection
    ) async throws -> [Bool] {
        var admitted: [Bool] = []
        for request in requests {
            // The persisted text of the key, formatted here, inside the store's round trip.
            let key = request.key.description
            let used = try await count(key, window: request.policy.window, at: now, on: connection)
            guard used < request.policy.calls else {
                admitted.append(false)
                continue
            }
            _ = try await connection.query(
                "INSERT INTO pullsync_rate_events (key, at, expires_at) VALUES (?1, ?2, ?3)",
                [.text(key), .integer(int(now)), .integer(int(now + request.policy.window))]
            )
            admitted.append(true)
        }
        return admitted
    }

    package func count(key: RateLimitKey, window: Duration, at now: Timestamp) async throws -> Int {
        let key = key.description
        return try await transaction { connection in
            try await Self.count(key, window: window, at: now, on: connection)
        }
    }

    private static func count(
        _ key: String,
        window: Duration,
        at now: Timestamp,
        on connection: SQLiteConnection
    )
        async throws -> Int
    {
        // Calls counted at a later time count too (a request's time is taken before its turn
        // comes, so turns can run out of time order): no window may hold more than the limit.
        let rows = try await connection.query(
            "SELECT count(*) AS used FROM pullsync_rate_events WHERE key = ?1 AND at > ?2",
            [.text(key), .integer(int(now - window))]
        )
        return Int(rows.first?.column("used")?.integer ?? 0)
    }

    // MARK: BackfillSource

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

    // MARK: Upkeep

    /// The EC-issuing secret, created on first use.
    package func ecSecret() async throws -> [UInt8] {
        try await transaction { connection in
            let rows = try await connection.query("SELECT value FROM pullsync_meta WHERE name = 'ec_secret'")
            if let stored = rows.first?.column("value")?.blob, stored.readableBytes >= 16 {
                return Array(stored.readableBytesView)
            }
            let secret = randomECSecret()
            _ = try await connection.query(
                "INSERT OR REPLACE INTO pullsync_meta (name, value) VALUES ('ec_secret', ?1)",
                [.blob(ByteBuffer(bytes: secret))]
            )
            return secret
        }
    }

    /// Deletes rate-limit rows whose window has passed; returns how many.
    @discardableResult
    package func sweep(at now: Timestamp = SystemWallClock().now()) async throws -> Int {
        try await transaction { connection in
            try await connection.query(
                "DELETE FROM pullsync_rate_events WHERE expires_at <= ?1 RETURNING 1",
                [.integer(Self.int(now))]
            ).count
        }
    }

    private static func int(_ timestamp: Timestamp) -> SQLiteInt64 { SQLiteInt64(timestamp.nanosecondsSinceEpoch) }
}

/// A store operation that can't go on.
package struct SQLiteStoreError: Error, Sendable, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}
