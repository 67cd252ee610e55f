import PostgresNIO
import PullSyncStorage

// Schema migrations, the EC secret kept in the database, and connection settings (TLS).
extension PostgresStore {
    /// Schema versions, in order; version N is reached by running `migrations[N - 1]`.
    static let migrations: [[String]] = [
        [
            "CREATE TABLE pullsync_meta (name text PRIMARY KEY, value bytea NOT NULL)",
            """
            CREATE TABLE pullsync_ecs (
                ec_hash text PRIMARY KEY,
                ec_id text NOT NULL,
                created_at bigint NOT NULL,
                withdrawn_at bigint
            )
            """,
            """
            CREATE TABLE pullsync_uids (
                ec_hash text NOT NULL REFERENCES pullsync_ecs (ec_hash) ON DELETE CASCADE,
                source_domain text NOT NULL,
                uid text NOT NULL,
                synced_at bigint NOT NULL,
                expires_at bigint,
                PRIMARY KEY (ec_hash, source_domain)
            )
            """,
            // One row per rate-limit key: the send times inside the window (at most `calls`),
            // and the lease of the call in flight for it, if any.
            """
            CREATE TABLE pullsync_rate (
                key text PRIMARY KEY,
                times bigint[] NOT NULL,
                calls integer NOT NULL,
                expires_at bigint NOT NULL,
                lease_holder text,
                lease_until bigint
            )
            """,
            "CREATE INDEX pullsync_rate_expiry ON pullsync_rate (expires_at)",
        ],
        // 2: backfill checkpoints, one per partner.
        [
            """
            CREATE TABLE pullsync_backfill (
                partner_id text PRIMARY KEY,
                cursor text NOT NULL,
                started_at bigint NOT NULL,
                updated_at bigint NOT NULL,
                processed bigint NOT NULL,
                outcomes text NOT NULL
            )
            """
        ],
        // 3: per-partner revocation. A revoked pair keeps its row with no UID and the time of the
        // revocation, so a write planned before it stores nothing; the row lock orders the two.
        [
            "ALTER TABLE pullsync_uids ALTER COLUMN uid DROP NOT NULL",
            "ALTER TABLE pullsync_uids ADD COLUMN revoked_at bigint",
            // Retention: UIDs by age, ECs by when they were last seen.
            "CREATE INDEX pullsync_uids_synced ON pullsync_uids (synced_at)",
            "ALTER TABLE pullsync_ecs ADD COLUMN seen_at bigint",
            "UPDATE pullsync_ecs SET seen_at = created_at",
            "CREATE INDEX pullsync_ecs_seen ON pullsync_ecs (seen_at)",
        ],
        // 4: each EC's consent snapshot (the signals last seen with it), for backfill.
        [
            """
            ALTER TABLE pullsync_ecs
                ADD COLUMN consent_digest bigint, ADD COLUMN consent_at bigint, ADD COLUMN consent_kept boolean,
                ADD COLUMN consent_tcf text, ADD COLUMN consent_gpp text, ADD COLUMN consent_gpp_sid text,
                ADD COLUMN consent_usp text
            """
        ],
        // 5: the opt-out outbox. A settled row stays (result set), so a pair is told once.
        [
            """
            CREATE TABLE pullsync_optouts (
                ec_hash text NOT NULL REFERENCES pullsync_ecs (ec_hash) ON DELETE CASCADE,
                source_domain text NOT NULL,
                ec_id text NOT NULL,
                enqueued_at bigint NOT NULL,
                attempts integer NOT NULL DEFAULT 0,
                next_at bigint NOT NULL,
                result text,
                settled_at bigint,
                uid_synced_at bigint NOT NULL,
                PRIMARY KEY (ec_hash, source_domain)
            )
            """,
            "CREATE INDEX pullsync_optouts_due ON pullsync_optouts (next_at) WHERE result IS NULL",
        ],
    ]

    /// The schema version this build writes.
    package static var schemaVersion: Int { migrations.count }

    /// Brings the schema to this build's version and returns the EC-issuing secret (created if
    /// there is none), over a connection of its own: the pool isn't running yet, and a service
    /// needs the secret before it starts.
    static func migrate(_ url: PostgresStoreURL, logger: Logger) async throws -> [UInt8] {
        let connection = try await PostgresConnection.connect(
            configuration: connectionConfiguration(url),
            id: 0,
            logger: logger
        )
        do {
            // Several nodes may start at once: creating the bookkeeping can race, and loses
            // harmlessly (the other node created it); the version row is then locked while
            // migrating, so migrations run once.
            for attempt in 1...3 {
                do {
                    try await connection.query(
                        PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(url.schema)"),
                        logger: logger
                    )
                    try await connection.query(
                        PostgresQuery(
                            unsafeSQL:
                                "CREATE TABLE IF NOT EXISTS \(url.schema).pullsync_schema (id integer PRIMARY KEY CHECK (id = 1), version integer NOT NULL)"
                        ),
                        logger: logger
                    )
                    try await connection.query(
                        PostgresQuery(
                            unsafeSQL: "INSERT INTO \(url.schema).pullsync_schema VALUES (1, 0) ON CONFLICT DO NOTHING"
                        ),
                        logger: logger
                    )
                    break
                } catch {
                    if attempt == 3 { throw error }
                }
            }
            try await connection.query(PostgresQuery(unsafeSQL: "SET search_path TO \(url.schema)"), logger: logger)
            try await connection.withTransaction(logger: logger) { connection in
                let rows = try await connection.query(
                    "SELECT version FROM pullsync_schema WHERE id = 1 FOR UPDATE",
                    logger: logger
                )
                var version = 0
                for try await value in rows.decode(Int.self) { version = value }
                guard version <= migrations.count else {
                    throw PostgresStoreError(
                        "the database has pullsync schema version \(version), newer than this build's \(migrations.count)"
                    )
                }
                for next in version..<migrations.count {
                    for statement in migrations[next] {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query(
                        "UPDATE pullsync_schema SET version = \(next + 1) WHERE id = 1",
                        logger: logger
                    )
                }
            }
            let secret = try await ecSecret(on: connection, logger: logger)
            try await connection.close()
            return secret
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Reads the EC-issuing secret, creating it first if there is none; every node gets the
    /// same one.
    private static func ecSecret(on connection: PostgresConnection, logger: Logger) async throws -> [UInt8] {
        // A node creating it at the same moment makes this statement see neither its own insert
        // nor the other's row (same snapshot); the next attempt sees the row.
        for _ in 1...3 {
            let candidate = ByteBuffer(bytes: randomECSecret())
            let rows = try await connection.query(
                """
                WITH inserted AS (
                    INSERT INTO pullsync_meta (name, value) VALUES ('ec_secret', \(candidate))
                    ON CONFLICT (name) DO NOTHING
                    RETURNING value
                )
                SELECT value FROM inserted
                UNION ALL
                SELECT value FROM pullsync_meta WHERE name = 'ec_secret' AND NOT EXISTS (SELECT 1 FROM inserted)
                """,
                logger: logger
            )
            for try await value in rows.decode(ByteBuffer.self) { return Array(value.readableBytesView) }
        }
        throw PostgresStoreError("the EC secret could not be read or created")
    }

    /// A single connection's configuration (the pool has its own type for the same settings).
    static func connectionConfiguration(_ url: PostgresStoreURL) throws -> PostgresConnection.Configuration {
        if url.host.hasPrefix("/") {
            return PostgresConnection.Configuration(
                unixSocketPath: "\(url.host)/.s.PGSQL.\(url.port)",
                username: url.username,
                password: url.password,
                database: url.database
            )
        }
        return PostgresConnection.Configuration(
            host: url.host,
            port: url.port,
            username: url.username,
            password: url.password,
            database: url.database,
            tls: try connectionTLS(url.sslMode)
        )
    }

    static func clientTLS(_ mode: PostgresStoreURL.SSLMode) -> PostgresClient.Configuration.TLS {
        switch mode {
        case .disable: .disable
        case .prefer: .prefer(.makeClientConfiguration())
        case .require: .require(.makeClientConfiguration())
        }
    }

    private static func connectionTLS(_ mode: PostgresStoreURL.SSLMode) throws -> PostgresConnection.Configuration.TLS {
        switch mode {
        case .disable: .disable
        case .prefer: .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
        case .require: .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
    }
}
