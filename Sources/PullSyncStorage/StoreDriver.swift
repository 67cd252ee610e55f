public import Logging

/// Opens the stores of one kind of store URL. `memory:` is built in (``memory``); the SQLite and
/// PostgreSQL stores bring theirs (`StoreDriver.sqlite` in `PullSyncSQLite`, `StoreDriver.postgres`
/// in `PullSyncPostgres`), so a service links only the database drivers it uses.
public struct StoreDriver: Sendable {
    /// What the driver is for, as users write it (`sqlite:PATH`), for errors.
    public var name: String
    private let opener: @Sendable (StoreURL, Logger) async throws -> (any PullSyncStore)?

    /// - Parameter open: opens the store `url` names, creating or migrating its schema; `nil`
    ///   when `url` is not for this driver.
    package init(
        name: String,
        open: @escaping @Sendable (_ url: StoreURL, _ logger: Logger) async throws -> (any PullSyncStore)?
    ) {
        self.name = name
        self.opener = open
    }

    /// Opens `url` if it is this driver's kind.
    package func open(_ url: StoreURL, logger: Logger) async throws -> (any PullSyncStore)? {
        try await opener(url, logger)
    }

    /// `memory:`: a ``MemoryStore``.
    public static let memory = StoreDriver(name: "memory:") { url, _ in
        guard case .memory = url else { return nil }
        return MemoryStore()
    }
}

extension StoreURL {
    /// The store `pullsync serve` uses when no `--store` is given: an SQLite file in the working
    /// directory.
    public static let defaultURL = "sqlite:pullsync.db"

    /// Opens the store `url` names with the first of `drivers` that takes it, creating or
    /// migrating its schema. Run the store (it is a `Service`) while it is used.
    ///
    /// - Throws: ``StoreOpenError`` naming the URL (never its password) and the problem.
    public static func open(
        _ url: String,
        drivers: [StoreDriver],
        logger: Logger
    ) async throws(StoreOpenError) -> any PullSyncStore {
        let parsed: StoreURL
        do {
            parsed = try StoreURL(parsing: url)
        } catch {
            throw StoreOpenError(description: error.description)
        }
        for driver in drivers {
            do {
                if let store = try await driver.open(parsed, logger: logger) { return store }
            } catch {
                throw StoreOpenError(description: "cannot open store \(parsed): \(String(describing: error))")
            }
        }
        let known = drivers.map(\.name).joined(separator: ", ")
        throw StoreOpenError(
            description: "no store driver for \(parsed) in this build (it has: \(known))"
        )
    }
}

/// A store URL that can't be parsed or a store that can't be opened.
public struct StoreOpenError: Error, Sendable, CustomStringConvertible {
    public var description: String
}
