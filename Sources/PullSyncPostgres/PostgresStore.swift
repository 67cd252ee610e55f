package import Logging
import NIOCore
import NIOSSL
import PostgresNIO
package import PullSyncKernel
package import PullSyncStorage
import ServiceLifecycle
import Synchronization

/// The store for many edge nodes (`postgres://USER@HOST/DB`): identity graph, rate-limit
/// counters, call leases and the EC-issuing secret in PostgreSQL, shared by every node.
///
/// Every operation is one statement (one round trip) and exact under concurrency on one node
/// and across nodes: rate limits are counted with a conditional upsert on the key's row (its
/// row lock serializes concurrent counts), UID writes are conditional statements that see the
/// latest committed row, and a call's lease lives on the same row as its rate-limit count, so
/// "not in flight elsewhere" and "under the limit" are decided together. Plain SQL only (no
/// stored procedures, no advisory locks), so PostgreSQL-compatible databases can run it.
package final class PostgresStore: PullSyncStore, CombinedStore {
    /// Which clock stamps the calls counted against a shared partner budget.
    package enum BudgetClock: Sendable, Hashable {
        /// PostgreSQL's `clock_timestamp()`, read once the budget row is locked: one clock for
        /// every node (no skew between them), and no time lost waiting for the lock or the
        /// round trip counts toward the window. The default.
        case database
        /// The `at` the kernel passes (its wall clock): deterministic, for tests with a test clock.
        case caller
    }

    private let client: PostgresClient
    private let secret: [UInt8]
    private let operationTimeout: Duration
    private let budgetClock: BudgetClock
    private let statements = Atomic<Int>(0)
    private let sweepInterval: Duration
    private let logger: Logger

    /// Where it is, without the password.
    package let url: PostgresStoreURL

    /// Brings the schema to this build's version (over a connection of its own, before the
    /// pool runs) and returns the store. Run it (it is a `Service`) for the store to answer.
    ///
    /// - Parameter operationTimeout: how long one operation may take before it fails (and the
    ///   kernel skips as `store_unavailable`); a database that is down must not stall pull sync.
    package static func open(
        _ url: PostgresStoreURL,
        operationTimeout: Duration = .seconds(2),
        maximumConnections: Int = 20,
        budgetClock: BudgetClock = .database,
        sweepInterval: Duration = .seconds(60),
        logger: Logger = Logger(label: "pullsync.postgres")
    ) async throws -> PostgresStore {
        let secret = try await migrate(url, logger: logger)
        var configuration = PostgresClient.Configuration(
            host: url.host,
            port: url.port,
            username: url.username,
            password: url.password,
            database: url.database,
            tls: clientTLS(url.sslMode)
        )
        if url.host.hasPrefix("/") {
            configuration = PostgresClient.Configuration(
                unixSocketPath: "\(url.host)/.s.PGSQL.\(url.port)",
                username: url.username,
                password: url.password,
                database: url.database
            )
        }
        configuration.options.connectTimeout = operationTimeout
        configuration.options.maximumConnections = maximumConnections
        configuration.options.additionalStartupParameters = [("search_path", url.schema)]
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return PostgresStore(
            client: client,
            url: url,
            secret: secret,
            operationTimeout: operationTimeout,
            budgetClock: budgetClock,
            sweepInterval: sweepInterval,
            logger: logger
        )
    }

    private init(
        client: PostgresClient,
        url: PostgresStoreURL,
        secret: [UInt8],
        operationTimeout: Duration,
        budgetClock: BudgetClock,
        sweepInterval: Duration,
        logger: Logger
    ) {
        self.sweepInterval = sweepInterval
        self.client = client
        self.secret = secret
        self.url = url
        self.operationTimeout = operationTimeout
        self.budgetClock = budgetClock
        self.logger = logger
    }

    /// Runs the connection pool (it reconnects on its own after an outage) and the sweep of
    /// expired rows every `sweepInterval`, until the group shuts down.
    package func run() async throws {
        let maintenance = StoreMaintenance(
            interval: sweepInterval,
            logger: logger,
            sweep: { try await self.sweep(at: $0) },
            close: {}
        )
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await self.client.run() }
            group.addTask { try await maintenance.run() }
        }
    }

    /// Statements sent so far: the store's round trips.
    package var roundTrips: Int { statements.load(ordering: .relaxed) }

    // MARK: Schema

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
    private static func migrate(_ url: PostgresStoreURL, logger: Logger) async throws -> [UInt8] {
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

    private static func clientTLS(_ mode: PostgresStoreURL.SSLMode) -> PostgresClient.Configuration.TLS {
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

    // MARK: Running statements

    /// Runs one statement, collecting its rows, within the operation timeout.
    ///
    /// Waiting for PostgreSQL's answer can't be cancelled, so at the timeout the connection the
    /// statement went out on is closed: that ends the wait (the pool opens another connection).
    /// A slow statement, a lock held elsewhere or a server that stopped answering costs one
    /// operation its timeout, and nothing waits past it.
    func run<Row: Sendable>(
        _ query: PostgresQuery,
        _ collect: @escaping @Sendable (PostgresRowSequence) async throws -> Row
    ) async throws -> Row {
        try await onConnection { connection in try await Self.send(query, on: connection, collect) }
    }

    /// Runs `statements` as one transaction on one connection, within the operation timeout (as
    /// ``run(_:_:)``), and collects the last one's rows. Each statement sees what was committed
    /// before it started: a lock taken by the first is waited for before the next reads.
    func transaction<Row: Sendable>(
        _ statements: [PostgresQuery],
        _ collect: @escaping @Sendable (PostgresRowSequence) async throws -> Row
    ) async throws -> Row {
        guard let last = statements.last else { throw PostgresStoreError("a transaction needs a statement") }
        @Sendable func drain(_ rows: PostgresRowSequence) async throws { for try await _ in rows {} }
        return try await onConnection { connection in
            try await Self.send("BEGIN", on: connection, drain)
            do {
                for statement in statements.dropLast() { try await Self.send(statement, on: connection, drain) }
                let rows = try await Self.send(last, on: connection, collect)
                try await Self.send("COMMIT", on: connection, drain)
                return rows
            } catch {
                // A closed connection rolls back on its own.
                try? await Self.send("ROLLBACK", on: connection, drain)
                throw error
            }
        }
    }

    /// Runs `body` on a pooled connection within the operation timeout (see ``run(_:_:)``).
    private func onConnection<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        statements.add(1, ordering: .relaxed)
        let client = self.client
        let timeout = operationTimeout
        let lease = OperationLease()
        do {
            return try await withDeadline(timeout, onExpiry: lease.expire) {
                // A connection leased in the moment before the pool noticed it close (the server
                // restarted, or a timed-out statement's connection was closed): nothing was sent,
                // so the statement goes out on another, a few times at most, within the timeout.
                var attempt = 1
                while true {
                    do {
                        return try await client.withConnection { connection in
                            // A lease granted just as the timeout fired is not used.
                            guard lease.hold(connection) else { throw CancellationError() }
                            defer { lease.release() }
                            return try await body(connection)
                        }
                    } catch let error as PostgresStoreError where error.notSent && attempt < 3 {
                        attempt += 1
                    }
                }
            }
        } catch is DeadlineExceeded {
            throw PostgresStoreError("no answer from PostgreSQL within \(timeout)")
        }
    }

    /// Sends `query` on `connection` and collects its rows; fails at once if the connection is
    /// closed.
    ///
    /// PostgresNIO drops a query written to a connection whose channel is already torn down, and
    /// then its answer never comes and cancelling the wait doesn't end it: an operation stuck
    /// that way outlives its timeout and holds up shutdown. Its pool can lease such a connection
    /// in the moment between the server closing it (PostgreSQL stopped or restarted) and the pool
    /// noticing. So the check and the write run on the connection's event loop, in one turn of
    /// it, where the channel can't close in between.
    static func send<Row: Sendable>(
        _ query: PostgresQuery,
        on connection: PostgresConnection,
        _ collect: @Sendable (PostgresRowSequence) async throws -> Row
    ) async throws -> Row {
        try await withTaskExecutorPreference(EventLoopTaskExecutor(connection.eventLoop)) {
            guard !connection.isClosed else {
                throw PostgresStoreError(
                    "the connection to PostgreSQL closed (the server stopped or restarted)",
                    notSent: true
                )
            }
            return try await collect(try await connection.query(query, logger: quiet))
        }
    }

    /// PostgresClient's own queries log nothing either.
    private static let quiet = Logger(label: "pullsync.postgres.query", factory: { _ in SwiftLogNoOpLogHandler() })

    // MARK: IdentityGraph

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
        let value = edgeCookie.value
        let created = now.nanosecondsSinceEpoch
        let kept = Snapshot(consent)
        let batch = RateBatch(requests, lease: lease, at: now)
        // Inserted now (no UIDs yet, and the batch counted), or already there (read in the
        // same statement, nothing counted).
        let rows = try await run(
            """
            WITH inserted AS (
                INSERT INTO pullsync_ecs (
                    ec_hash, ec_id, created_at, seen_at,
                    consent_digest, consent_at, consent_kept, consent_tcf, consent_gpp, consent_gpp_sid, consent_usp
                )
                VALUES (
                    \(hash), \(value), \(created), \(created),
                    \(kept.digest), \(kept.at), \(kept.kept), \(kept.tcf), \(kept.gpp), \(kept.sections), \(kept.usp)
                )
                ON CONFLICT (ec_hash) DO NOTHING
                RETURNING ec_id, created_at, seen_at, consent_digest
            ), input AS (
                SELECT i.*, \(batch.at)::bigint AS at, \(batch.holder)::text AS holder, \(batch.until)::bigint AS until
                FROM unnest(\(batch.keys)::text[], \(batch.calls)::integer[], \(batch.windows)::bigint[])
                    AS i(key, calls, window_ns)
                WHERE EXISTS (SELECT 1 FROM inserted)
            ), \(unescaped: Self.countedCTE)
            SELECT ec_id, created_at, NULL::bigint, NULL::text, NULL::text, NULL::bigint, NULL::bigint, seen_at,
                   consent_digest, ARRAY(SELECT key FROM counted),
                   ARRAY(SELECT i.key FROM input i WHERE \(unescaped: Self.leasedElsewhere))
            FROM inserted
            UNION ALL
            SELECT e.ec_id, e.created_at, e.withdrawn_at, u.source_domain, u.uid, u.synced_at, u.expires_at, e.seen_at,
                   e.consent_digest, NULL::text[], NULL::text[]
            FROM pullsync_ecs e LEFT JOIN pullsync_uids u ON u.ec_hash = e.ec_hash
            WHERE e.ec_hash = \(hash) AND NOT EXISTS (SELECT 1 FROM inserted)
            """
        ) { rows in
            var collected: [(RecordRow, counted: [String]?, leased: [String]?)] = []
            for try await row in rows.decode(
                (String, Int64, Int64?, String?, String?, Int64?, Int64?, Int64?, Int64?, [String]?, [String]?).self
            ) {
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
        guard !writes.isEmpty else {
            if let releasing { try await releaseLeases(text: releasing.keys, holder: releasing.holder) }
            return []
        }
        let leaseKeys = releasing?.keys ?? []
        let leaseHolder = releasing?.holder ?? ""
        // NULL can't travel inside these arrays: -1 stands for "no expiry", and the expected
        // values of a write that expects no entry are ignored.
        let domains = writes.map(\.sourceDomain)
        let uids = writes.map(\.value.uid)
        let synced = writes.map(\.value.syncedAt.nanosecondsSinceEpoch)
        let expires = writes.map { $0.value.expiresAt?.nanosecondsSinceEpoch ?? -1 }
        let hasExpected = writes.map { $0.expected != nil }
        let expectedUIDs = writes.map { $0.expected?.uid ?? "" }
        let expectedSynced = writes.map { $0.expected?.syncedAt.nanosecondsSinceEpoch ?? 0 }
        let expectedExpires = writes.map { $0.expected?.expiresAt?.nanosecondsSinceEpoch ?? -1 }
        let planned = writes.map(\.plannedAt.nanosecondsSinceEpoch)
        // The root row is share-locked: a withdrawal waits for this write and then deletes
        // what it stored, or went first and this write sees it (locking reads see the latest
        // committed row). A revocation's row (no UID) is only replaced by a write planned after
        // it; the update re-checks the row once it holds its lock.
        let (rootCount, withdrawn, stored, revoked) = try await run(
            """
            WITH root AS (
                SELECT withdrawn_at FROM pullsync_ecs WHERE ec_hash = \(ecHash) FOR SHARE
            ), released AS (
                -- Rows an admission or the sweep holds are skipped, not waited for: the UIDs must
                -- not wait or deadlock on them, and a lease left behind lapses on its own.
                UPDATE pullsync_rate SET lease_holder = NULL, lease_until = NULL
                WHERE key IN (
                    SELECT key FROM pullsync_rate
                    WHERE key = ANY(\(leaseKeys)::text[]) AND lease_holder = \(leaseHolder)
                    ORDER BY key
                    FOR UPDATE SKIP LOCKED
                )
            ), input AS (
                SELECT * FROM unnest(
                    \(domains)::text[], \(uids)::text[], \(synced)::bigint[], \(expires)::bigint[],
                    \(hasExpected)::boolean[], \(expectedUIDs)::text[], \(expectedSynced)::bigint[],
                    \(expectedExpires)::bigint[], \(planned)::bigint[]
                ) AS w(
                    domain, uid, synced_at, expires_at, has_expected, expected_uid, expected_synced, expected_expires,
                    planned_at
                )
            ), replaced AS (
                UPDATE pullsync_uids u
                SET uid = w.uid, synced_at = w.synced_at, expires_at = NULLIF(w.expires_at, -1), revoked_at = NULL
                FROM input w
                WHERE u.ec_hash = \(ecHash) AND u.source_domain = w.domain AND NOT w.has_expected
                    AND u.uid IS NULL AND u.revoked_at < w.planned_at
                    AND EXISTS (SELECT 1 FROM root WHERE withdrawn_at IS NULL)
                RETURNING u.source_domain
            ), inserted AS (
                INSERT INTO pullsync_uids (ec_hash, source_domain, uid, synced_at, expires_at)
                SELECT \(ecHash), w.domain, w.uid, w.synced_at, NULLIF(w.expires_at, -1)
                FROM input w
                WHERE NOT w.has_expected AND EXISTS (SELECT 1 FROM root WHERE withdrawn_at IS NULL)
                ORDER BY w.domain
                ON CONFLICT (ec_hash, source_domain) DO NOTHING
                RETURNING source_domain
            ), updated AS (
                UPDATE pullsync_uids u
                SET uid = w.uid, synced_at = w.synced_at, expires_at = NULLIF(w.expires_at, -1)
                FROM input w
                WHERE u.ec_hash = \(ecHash) AND u.source_domain = w.domain AND w.has_expected
                    AND u.uid = w.expected_uid AND u.synced_at = w.expected_synced
                    AND u.expires_at IS NOT DISTINCT FROM NULLIF(w.expected_expires, -1)
                    AND EXISTS (SELECT 1 FROM root WHERE withdrawn_at IS NULL)
                RETURNING u.source_domain
            )
            SELECT
                (SELECT count(*) FROM root)::integer,
                COALESCE((SELECT withdrawn_at IS NOT NULL FROM root), false),
                ARRAY(
                    SELECT source_domain FROM inserted UNION ALL SELECT source_domain FROM updated
                    UNION ALL SELECT source_domain FROM replaced
                ),
                ARRAY(
                    SELECT w.domain FROM input w
                    JOIN pullsync_uids u ON u.ec_hash = \(ecHash) AND u.source_domain = w.domain
                    WHERE u.uid IS NULL AND u.revoked_at >= w.planned_at
                )
            """
        ) { rows in
            var answer: (Int, Bool, [String], [String]) = (0, false, [], [])
            for try await row in rows.decode((Int, Bool, [String], [String]).self) { answer = row }
            return answer
        }
        if rootCount == 0 { return writes.map { _ in .unknownEC } }
        if withdrawn { return writes.map { _ in .withdrawn } }
        let storedDomains = Set(stored)
        let revokedDomains = Set(revoked)
        return writes.map { write in
            if storedDomains.contains(write.sourceDomain) { return .stored }
            return revokedDomains.contains(write.sourceDomain) ? .revoked : .conflict
        }
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
    private struct Snapshot {
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

    // MARK: OptOutOutbox

    /// An opt-out already in the outbox stays as it is (pending, or settled about the same UID);
    /// one settled about an older UID is queued again: the partner learned the EC anew since.
    private static let requeueNewer = """
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

    // MARK: RateLimiter

    package var sharesLeases: Bool { true }

    /// Partner budgets are sliding windows on `budget:{partner}` rows of the rate table, shared
    /// by every node (see ``takeBudget(_:at:)``).
    package var sharesBudgets: Bool { true }

    /// One statement: an upsert of the partner's `budget:` row that appends the send time only if
    /// fewer than `calls` sends are inside the window (and, for budgets of 20 and more, fewer
    /// than a tenth of them inside its last tenth). Concurrent statements wait for each
    /// other's row lock, and the time is read after it (``BudgetClock/database``), so neither
    /// the wait nor the round trip lets calls bunch up in one second.
    package func takeBudget(_ budget: SharedBudget, at now: Timestamp) async throws -> Bool {
        // Inlined, not bound: a fixed SQL expression or an integer, never user input.
        let time =
            budgetClock == .database
            ? "(extract(epoch from clock_timestamp()) * 1000000000)::bigint" : "\(now.nanosecondsSinceEpoch)::bigint"
        let window = budget.window.nanoseconds
        let calls = Int32(clamping: budget.calls)
        // Budgets of 20/s and more are spread: at most a tenth in any tenth of the window (as
        // `PartnerGuard` does per process); 0 when not spread.
        let perTenth = Int32(clamping: budget.calls >= 20 ? (budget.calls + 9) / 10 : 0)
        return try await run(
            """
            WITH taken AS (
                INSERT INTO pullsync_rate AS r (key, times, calls, expires_at)
                SELECT \(budget.key), ARRAY[n.t], \(calls), n.t + \(window)::bigint
                FROM (SELECT \(unescaped: time) AS t) n
                ON CONFLICT (key) DO UPDATE SET
                    times = array_append(
                        ARRAY(SELECT t FROM unnest(r.times) AS t WHERE t > \(unescaped: time) - \(window)::bigint),
                        \(unescaped: time)),
                    calls = excluded.calls,
                    expires_at = \(unescaped: time) + \(window)::bigint
                WHERE cardinality(ARRAY(
                        SELECT t FROM unnest(r.times) AS t WHERE t > \(unescaped: time) - \(window)::bigint
                    )) < excluded.calls
                    AND (\(perTenth)::integer = 0 OR cardinality(ARRAY(
                        SELECT t FROM unnest(r.times) AS t WHERE t > \(unescaped: time) - \(window / 10)::bigint
                    )) < \(perTenth)::integer)
                RETURNING 1
            )
            SELECT count(*)::integer FROM taken
            """
        ) { rows in
            var taken = 0
            for try await value in rows.decode(Int.self) { taken = value }
            return taken > 0
        }
    }

    package func acquire(_ requests: [RateLimitRequest], at now: Timestamp) async throws -> [Bool] {
        try await count(requests, lease: nil, at: now).map { $0 == .admitted }
    }

    package func admit(
        _ requests: [RateLimitRequest],
        lease: CallLease,
        at now: Timestamp
    ) async throws
        -> [LeasedAdmission]
    {
        try await count(requests, lease: lease, at: now)
    }

    /// One statement for the whole batch (see ``countedCTE``).
    private func count(
        _ requests: [RateLimitRequest],
        lease: CallLease?,
        at now: Timestamp
    ) async throws
        -> [LeasedAdmission]
    {
        guard !requests.isEmpty else { return [] }
        let batch = RateBatch(requests, lease: lease, at: now)
        let (counted, leased): (Set<String>, Set<String>) = try await run(
            """
            WITH input AS (
                SELECT i.*, \(batch.at)::bigint AS at, \(batch.holder)::text AS holder, \(batch.until)::bigint AS until
                FROM unnest(\(batch.keys)::text[], \(batch.calls)::integer[], \(batch.windows)::bigint[])
                    AS i(key, calls, window_ns)
            ), \(unescaped: Self.countedCTE)
            SELECT i.key, EXISTS (SELECT 1 FROM counted c WHERE c.key = i.key), \(unescaped: Self.leasedElsewhere)
            FROM input i
            """
        ) { rows in
            var counted: Set<String> = []
            var leased: Set<String> = []
            for try await (key, admitted, isLeased) in rows.decode((String, Bool, Bool).self) {
                if admitted { counted.insert(key) }
                if isLeased { leased.insert(key) }
            }
            return (counted, leased)
        }
        return batch.admissions(counted: counted, leased: leased)
    }

    /// The CTE `counted` of a rate-limit batch, after an `input` CTE with columns `key`, `calls`,
    /// `window_ns`, `at`, `holder` and `until`: for each key, an upsert of its row that appends
    /// `at` to the send times only if fewer than `calls` are inside the window and (with a
    /// lease) no other lease is unexpired, and then takes the lease. It holds the keys counted.
    /// Concurrent statements on one key wait for each other's row lock and re-check on the row
    /// they then see; keys are taken in sorted order so that two batches never wait on each other
    /// in a cycle. (`excluded.times[1]` is the batch's `at`.)
    private static let countedCTE = """
        counted AS (
            INSERT INTO pullsync_rate AS r (key, times, calls, expires_at, lease_holder, lease_until)
            SELECT i.key, ARRAY[i.at], i.calls, i.at + i.window_ns, i.holder, i.until
            FROM input i
            ORDER BY i.key
            ON CONFLICT (key) DO UPDATE SET
                times = array_append(
                    ARRAY(
                        SELECT t FROM unnest(r.times) AS t
                        WHERE t > excluded.times[1] - (excluded.expires_at - excluded.times[1])
                    ),
                    excluded.times[1]),
                calls = excluded.calls,
                expires_at = excluded.expires_at,
                lease_holder = COALESCE(excluded.lease_holder, r.lease_holder),
                lease_until = COALESCE(excluded.lease_until, r.lease_until)
            WHERE cardinality(ARRAY(
                    SELECT t FROM unnest(r.times) AS t
                    WHERE t > excluded.times[1] - (excluded.expires_at - excluded.times[1])
                )) < excluded.calls
                AND (excluded.lease_holder IS NULL OR r.lease_until IS NULL OR r.lease_until <= excluded.times[1])
            RETURNING r.key
        )
        """

    /// Whether input row `i`'s key had an unexpired lease before the statement (read from the
    /// statement's snapshot): tells a refusal for a lease from one for the limit.
    private static let leasedElsewhere = """
        EXISTS (SELECT 1 FROM pullsync_rate r WHERE r.key = i.key AND r.lease_until > i.at AND i.holder IS NOT NULL)
        """

    package func releaseLeases(_ keys: [RateLimitKey], holder: String) async throws {
        try await releaseLeases(text: keys.map(\.description), holder: holder)
    }

    /// Gives back `holder`'s leases on the keys persisted as `keys`.
    private func releaseLeases(text keys: [String], holder: String) async throws {
        guard !keys.isEmpty else { return }
        try await run(
            """
            UPDATE pullsync_rate SET lease_holder = NULL, lease_until = NULL
            WHERE key = ANY(\(keys)::text[]) AND lease_holder = \(holder)
            """
        ) { rows in for try await _ in rows {} }
    }

    package func count(key: RateLimitKey, window: Duration, at now: Timestamp) async throws -> Int {
        let key = key.description
        let at = now.nanosecondsSinceEpoch
        let start = at - window.nanoseconds
        return try await run(
            """
            SELECT COALESCE((
                SELECT cardinality(ARRAY(SELECT t FROM unnest(times) AS t WHERE t > \(start) AND t <= \(at)))
                FROM pullsync_rate WHERE key = \(key)
            ), 0)::integer
            """
        ) { rows in
            var used = 0
            for try await value in rows.decode(Int.self) { used = value }
            return used
        }
    }

    // MARK: BackfillSource

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

    // MARK: Upkeep

    /// The EC-issuing secret, read (or created) when the store was opened; every node gets the
    /// same one.
    package func ecSecret() async throws -> [UInt8] { secret }

    /// Deletes rate-limit rows whose window has passed and whose lease (if any) lapsed;
    /// returns how many.
    @discardableResult
    package func sweep(at now: Timestamp = SystemWallClock().now()) async throws -> Int {
        let at = now.nanosecondsSinceEpoch
        return try await run(
            """
            WITH gone AS (
                DELETE FROM pullsync_rate
                WHERE expires_at <= \(at) AND (lease_until IS NULL OR lease_until <= \(at))
                RETURNING 1
            )
            SELECT count(*)::integer FROM gone
            """
        ) { rows in
            var removed = 0
            for try await value in rows.decode(Int.self) { removed = value }
            return removed
        }
    }
}

/// The connection one operation leased, closed if the operation's time runs out.
private final class OperationLease: Sendable {
    private let state = Mutex<(connection: PostgresConnection?, expired: Bool)>((nil, false))

    /// Records the operation's connection; false if its time already ran out.
    func hold(_ connection: PostgresConnection) -> Bool {
        state.withLock { state in
            guard !state.expired else { return false }
            state.connection = connection
            return true
        }
    }

    /// The operation is done with its connection (which goes back to the pool, and may be
    /// another operation's next).
    func release() {
        state.withLock { $0.connection = nil }
    }

    /// The operation's time ran out: closes its connection, which fails the statement in flight.
    func expire() {
        let connection = state.withLock { state in
            state.expired = true
            return state.connection
        }
        let _: EventLoopFuture<Void>? = connection?.close()  // at once, not after the statement
    }
}

/// A store operation that can't go on.
package struct PostgresStoreError: Error, Sendable, CustomStringConvertible {
    package var description: String
    /// The statement never went out (its connection was found closed): another may run it.
    var notSent = false

    init(_ description: String, notSent: Bool = false) {
        self.description = description
        self.notSent = notSent
    }
}

/// A rate-limit batch's columns, as the statements that count it bind them.
private struct RateBatch {
    var keys: [String]
    var calls: [Int32]
    var windows: [Int64]
    var at: Int64
    var holder: String?
    var until: Int64?

    init(_ requests: [RateLimitRequest], lease: CallLease?, at now: Timestamp) {
        // The persisted text of each key, formatted here, inside the store's round trip.
        keys = requests.map(\.key.description)
        calls = requests.map { Int32(clamping: $0.policy.calls) }
        windows = requests.map { $0.policy.window.nanoseconds }
        at = now.nanosecondsSinceEpoch
        holder = lease?.holder
        until = lease?.expiresAt.nanosecondsSinceEpoch
    }

    /// Each request's admission, in order, from the keys counted and those refused for a lease.
    func admissions(counted: Set<String>, leased: Set<String>) -> [LeasedAdmission] {
        keys.map { key in
            if counted.contains(key) { return .admitted }
            // Refused: the snapshot tells which rule it was (the decision itself was exact).
            return leased.contains(key) ? .leased : .rateLimited
        }
    }
}
