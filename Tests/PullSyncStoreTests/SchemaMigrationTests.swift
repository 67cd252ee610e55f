import Foundation
import Logging
import PartnerAdapterKit
import PostgresNIO
import PullSync
import PullSyncEdge
import PullSyncPostgres
import PullSyncSQLite
import PullSyncStorage
import SQLiteNIO
import Testing

/// The product creates and migrates its own schema, and refuses one from a newer build.
@Suite("Schema versions")
struct SchemaMigrationTests {
    @Test("A new SQLite file gets the current version; a newer one is refused, untouched")
    func sqlite() async throws {
        let url = try await freshURL(.sqlite)
        let path = String(url.dropFirst("sqlite:".count))
        let store = try await SQLiteStore.open(path: path)
        try await store.close()
        #expect(try await sqliteVersion(path) == SQLiteStore.schemaVersion)

        try await setSQLiteVersion(path, SQLiteStore.schemaVersion + 1)
        await #expect {
            _ = try await SQLiteStore.open(path: path)
        } throws: { error in
            "\(error)".contains("newer than this build's \(SQLiteStore.schemaVersion)")
        }
        #expect(try await sqliteVersion(path) == SQLiteStore.schemaVersion + 1)
    }

    @Test(
        "Opening a migrated PostgreSQL schema again, from several nodes at once, migrates once",
        .enabled(if: TestPostgres.isAvailable)
    )
    func postgresConcurrentOpen() async throws {
        let url = try await freshURL(.postgres)
        let parsed = try PostgresStoreURL(parsing: url)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 { group.addTask { _ = try await PostgresStore.open(parsed, operationTimeout: busyMachineTimeout) } }
            try await group.waitForAll()
        }
        let store = try await PostgresStore.open(parsed, operationTimeout: busyMachineTimeout)
        try await store.whileRunning {
            _ = try await store.createRoot(for: edgeCookie(1), at: t0)
            #expect(try await store.record(ecHash: ecHash(1)) != nil)
        }
    }

    @Test(
        "A version-1 store (the previous release's) is upgraded in place and keeps its data",
        arguments: StoreKind.persistent
    )
    func upgradeFromVersion1(kind: StoreKind) async throws {
        let url = try await freshURL(kind)
        let stored = uid("u-1", at: t0)
        try await withStore(kind, url: url) { opened in
            _ = try await opened.store.createRoot(for: edgeCookie(1), at: t0)
            _ = try await opened.store.write(
                [UIDWrite(sourceDomain: "a.example", value: stored, expected: nil)],
                ecHash: ecHash(1)
            )
        }
        // Back to version 1: the tables of version 2 gone, the tables as version 1 had them
        // (before revocations and retention), the version set back.
        switch kind {
        case .sqlite:
            let path = String(url.dropFirst("sqlite:".count))
            for statement in [
                "DROP TABLE pullsync_optouts",
                "DROP TABLE pullsync_backfill",
                """
                CREATE TABLE pullsync_uids_1 (
                    ec_hash TEXT NOT NULL REFERENCES pullsync_ecs (ec_hash) ON DELETE CASCADE,
                    source_domain TEXT NOT NULL, uid TEXT NOT NULL, synced_at INTEGER NOT NULL,
                    expires_at INTEGER, PRIMARY KEY (ec_hash, source_domain)
                ) WITHOUT ROWID
                """,
                "INSERT INTO pullsync_uids_1 SELECT ec_hash, source_domain, uid, synced_at, expires_at FROM pullsync_uids",
                "DROP TABLE pullsync_uids",
                "ALTER TABLE pullsync_uids_1 RENAME TO pullsync_uids",
                "DROP INDEX pullsync_ecs_seen",
                "ALTER TABLE pullsync_ecs DROP COLUMN seen_at",
            ] + Self.snapshotColumns.map({ "ALTER TABLE pullsync_ecs DROP COLUMN \($0)" }) {
                _ = try await sqlite3(path, statement)
            }
            try await setSQLiteVersion(path, 1)
        default:
            _ = try await postgres(
                url,
                [
                    "DROP TABLE pullsync_optouts",
                    "DROP TABLE pullsync_backfill", "ALTER TABLE pullsync_uids DROP COLUMN revoked_at",
                    "DROP INDEX pullsync_uids_synced", "ALTER TABLE pullsync_ecs DROP COLUMN seen_at",
                    "ALTER TABLE pullsync_uids ALTER COLUMN uid SET NOT NULL", "UPDATE pullsync_schema SET version = 1",
                ] + Self.snapshotColumns.map { "ALTER TABLE pullsync_ecs DROP COLUMN \($0)" }
            )
        }

        try await withStore(kind, url: url) { opened in
            let record = try await opened.store.record(ecHash: ecHash(1))
            #expect(record?.ecID == edgeCookie(1).value)
            #expect(record?.partners == ["a.example": stored], "the UIDs survive the rebuild of their table")
            #expect(record?.seenAt == t0, "an EC counts as seen when it was created")
            // Version 3's revocations work on the upgraded table.
            #expect(try await opened.store.revoke(["a.example"], ecHash: ecHash(1), at: t0 + .seconds(1)) == ["a.example"])
            #expect(try await opened.store.record(ecHash: ecHash(1))?.partners == [:])
            let checkpoint = BackfillCheckpoint(
                partnerID: "p",
                cursor: ecHash(1),
                startedAt: t0,
                updatedAt: t0,
                processed: 1,
                outcomes: ["uid": 1]
            )
            try await opened.store.saveBackfillCheckpoint(checkpoint)
            #expect(try await opened.store.backfillCheckpoint(partnerID: "p") == checkpoint)
            // Version 4's consent snapshots: none for an EC from before, kept once one is saved.
            #expect(record?.consentDigest == nil)
            let snapshot = ConsentSnapshot(ConsentStrings(usPrivacy: "1YNN"), seenAt: t0 + .seconds(2))
            try await opened.store.markSeen(ecHash: ecHash(1), at: t0 + .seconds(2), consent: snapshot)
            #expect(try await opened.store.record(ecHash: ecHash(1))?.consentDigest == snapshot.digest)
            // Version 5's outbox.
            #expect(try await opened.store.pendingOptOuts() == 0)
        }
        let version = SQLiteStore.schemaVersion
        #expect(version == PostgresStore.schemaVersion)
        switch kind {
        case .sqlite:
            #expect(try await sqliteVersion(String(url.dropFirst("sqlite:".count))) == version)
        default:
            #expect(try await postgres(url, ["SELECT version FROM pullsync_schema"]) == version)
        }
    }

    /// The columns version 4 added.
    static let snapshotColumns = [
        "consent_digest", "consent_at", "consent_kept", "consent_tcf", "consent_gpp", "consent_gpp_sid", "consent_usp",
    ]

    private func sqliteVersion(_ path: String) async throws -> Int {
        Int(try await sqlite3(path, "PRAGMA user_version") ?? -1)
    }

    private func setSQLiteVersion(_ path: String, _ version: Int) async throws {
        _ = try await sqlite3(path, "PRAGMA user_version = \(version)")
    }
}

/// Runs SQL on an SQLite file through SQLiteNIO, outside the store; the first column of the
/// first row.
func sqlite3(_ path: String, _ sql: String) async throws -> Int? {
    let connection = try await SQLiteConnection.open(storage: .file(path: path))
    let rows = try await connection.query(sql)
    try await connection.close()
    return rows.first?.columns.first?.data.integer
}

/// A connection of its own to the PostgreSQL schema `url` names, outside the store.
func connectPostgres(_ url: String, id: Int = 1) async throws -> PostgresConnection {
    let parsed = try PostgresStoreURL(parsing: url)
    let connection = try await PostgresConnection.connect(
        configuration: PostgresConnection.Configuration(
            host: parsed.host,
            port: parsed.port,
            username: parsed.username,
            password: parsed.password,
            database: parsed.database,
            tls: .disable
        ),
        id: id,
        logger: Logger(label: "schema-test", factory: { _ in SwiftLogNoOpLogHandler() })
    )
    do {
        try await connection.query(
            PostgresQuery(unsafeSQL: "SET search_path TO \(parsed.schema)"),
            logger: connection.logger
        )
    } catch {
        try? await connection.close()
        throw error
    }
    return connection
}

/// Runs statements on the PostgreSQL schema `url` names, outside the store; the first column
/// of the last statement's first row, as an integer.
func postgres(_ url: String, _ statements: [String]) async throws -> Int? {
    let connection = try await connectPostgres(url)
    do {
        var result: Int?
        for statement in statements {
            result = nil
            let rows = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: connection.logger)
            for try await row in rows {
                if result == nil { result = try? row.decode(Int.self) }
            }
        }
        try await connection.close()
        return result
    } catch {
        try? await connection.close()
        throw error
    }
}

/// The EC-issuing secret kept in PostgreSQL is there before the connection pool runs: a service
/// reads it while it is being built, before its services start.
@Suite("PostgreSQL EC secret", .enabled(if: TestPostgres.isAvailable))
struct PostgresSecretTests {
    @Test("Read at open, the same for every node, without the pool running")
    func secretBeforeThePoolRuns() async throws {
        let parsed = try PostgresStoreURL(parsing: try await freshURL(.postgres))
        let first = try await PostgresStore.open(parsed, operationTimeout: busyMachineTimeout)
        let second = try await PostgresStore.open(parsed, operationTimeout: busyMachineTimeout)
        let secret = try await first.ecSecret()
        #expect(secret.count == 32)
        #expect(try await second.ecSecret() == secret)
    }

    @Test("Through the store URL, as `pullsync serve` opens it: the secret is there before any service runs")
    func secretThroughTheStoreURL() async throws {
        let url = try await freshURL(.postgres)
        let store = try await StoreURL.open(url, drivers: [.memory, .sqlite, .postgres], logger: Logger(label: "secret-test"))
        let secret = try await store.ecSecret()
        #expect(secret.count == 32)
        // The same secret once the services run (every node agrees).
        let running = try await store.whileRunning { try await store.ecSecret() }
        #expect(running == secret)
    }
}
