public import PullSyncStorage

extension StoreDriver {
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`: a ``PostgresStore``, shared by every node
    /// that opens the same database.
    public static let postgres = StoreDriver(name: "postgres://USER@HOST/DB") { url, logger in
        guard case .postgres(let location) = url else { return nil }
        return try await PostgresStore.open(location, logger: logger)
    }
}
