
// Schema migrations, run in order when the file is opened.
extension SQLiteStore {
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

    func migrate() async throws {
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
}
