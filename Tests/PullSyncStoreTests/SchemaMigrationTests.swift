import Foundation
import Logging
import PullSync
import PullSyncEdge
import PullSyncPostgres
import PullSyncSQLite
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
            for _ in 0..<4 { group.addTask { _ = try await PostgresStore.open(parsed) } }
            try await group.waitForAll()
        }
        let store = try await PostgresStore.open(parsed)
        try await store.pullSyncStore().withServices {
            _ = try await store.createRoot(for: edgeCookie(1), at: t0)
            #expect(try await store.record(ecHash: ecHash(1)) != nil)
        }
    }

    private func sqliteVersion(_ path: String) async throws -> Int {
        Int(try await sqlite3(path, "PRAGMA user_version") ?? -1)
    }

    private func setSQLiteVersion(_ path: String, _ version: Int) async throws {
        _ = try await sqlite3(path, "PRAGMA user_version = \(version)")
    }
}

/// Runs SQL on an SQLite file through SQLiteNIO, outside the store; the first column of the
/// first row.
private func sqlite3(_ path: String, _ sql: String) async throws -> Int? {
    let connection = try await SQLiteConnection.open(storage: .file(path: path))
    let rows = try await connection.query(sql)
    try await connection.close()
    return rows.first?.columns.first?.data.integer
}
