public import PullSyncStorage

extension StoreDriver {
    /// `sqlite:PATH`: an ``SQLiteStore`` in the file at PATH (created if missing).
    public static let sqlite = StoreDriver(name: "sqlite:PATH") { url, logger in
        guard case .sqlite(let path) = url else { return nil }
        return try await SQLiteStore.open(path: path, logger: logger)
    }
}
