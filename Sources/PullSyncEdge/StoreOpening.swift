public import Logging
public import PullSync
import PullSyncPostgres
import PullSyncSQLite

extension PullSyncStore {
    /// The store of `pullsync serve` when no `--store` is given: an SQLite file in the
    /// working directory.
    public static let defaultURL = "sqlite:pullsync.db"

    /// Opens the store `url` names (see ``StoreURL``), creating or migrating its schema.
    /// Run the returned store's ``services`` while it is used.
    ///
    /// - Throws: ``StoreOpenError`` naming the URL (never its password) and the problem.
    public static func open(_ url: String, logger: Logger) async throws(StoreOpenError) -> PullSyncStore {
        let parsed: StoreURL
        do {
            parsed = try StoreURL(parsing: url)
        } catch {
            throw StoreOpenError(description: error.description)
        }
        do {
            switch parsed {
            case .memory:
                return .memory()
            case .sqlite(let path):
                return try await SQLiteStore.open(path: path, logger: logger).pullSyncStore()
            case .postgres(let postgres):
                return try await PostgresStore.open(postgres, logger: logger).pullSyncStore()
            }
        } catch {
            throw StoreOpenError(description: "cannot open store \(parsed): \(String(describing: error))")
        }
    }
}

/// A store URL that can't be parsed or a store that can't be opened.
public struct StoreOpenError: Error, Sendable, CustomStringConvertible {
    public var description: String
}
