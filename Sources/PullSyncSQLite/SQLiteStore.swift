package import Logging
import NIOCore
import NIOPosix
package import PullSyncKernel
import PullSyncStorage
import SQLiteNIO
import ServiceLifecycle
import Synchronization

/// The embedded, persistent store (`sqlite:PATH`): the identity graph, the rate-limit
/// counters and the EC-issuing secret in one SQLite file.
///
/// One process owns the file: every operation runs as one `BEGIN IMMEDIATE` transaction (or,
/// if it is a single statement, as that statement alone) on one connection, in turn, so each
/// is atomic (and also against another process opening the same file). Duplicate calls are
/// prevented in process (the kernel's own bookkeeping); for several nodes use the PostgreSQL
/// store, whose leases are shared.
package final class SQLiteStore: PullSyncStore, CombinedStore {
    let connection: SQLiteConnection
    let turn = AsyncSemaphore(permits: 1)
    private let transactions = Atomic<Int>(0)
    /// UID writes and root entries waiting for the transaction that makes them (see
    /// ``write(_:ecHash:)``).
    let changes = GroupCommit<Change, Changed>()
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

    /// UID writes and root entries queued for the next transaction (tests).
    package var queuedChangeCount: Int { changes.waitingCount }

    /// Runs `body` while holding the store's turn, so that no transaction runs meanwhile (tests
    /// queue writes behind it).
    package func holdingTurn<T>(_ body: () async throws -> T) async throws -> T {
        try await turn.acquire()
        defer { turn.release() }
        return try await body()
    }

    /// Operations run so far (transactions, and single statements run alone): the embedded
    /// store's "round trips".
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

    // MARK: Running transactions

    /// A change waiting for the transaction that makes it.
    enum Change: Sendable {
        /// One EC's UID writes.
        case write(ecHash: String, writes: [UIDWrite])
        /// An issued EC's root entry.
        case root(Root)

        struct Root: Sendable {
            var edgeCookie: EdgeCookie
            var at: Timestamp
            var consent: ConsentSnapshot?
            /// The calls to count if this creates the entry; `nil` when none are asked.
            var admitting: [RateLimitRequest]?
        }
    }

    /// What a change made.
    enum Changed: Sendable {
        case written([WriteResult])
        /// The entry, and its calls' admissions (`nil` when none were asked or it was there already).
        case root(ECRecord, admissions: [LeasedAdmission]?)
    }

    /// Runs `body`, an operation of one statement, in turn but without a transaction of its
    /// own: SQLite makes a single statement atomic by itself, and a `BEGIN` and a `COMMIT` would
    /// be two statements more (each compiled and sent to the thread pool). `holdingTurn`: the
    /// caller has taken the turn already; it is given back here either way.
    func alone<T: Sendable>(
        holdingTurn: Bool = false,
        _ body: @Sendable (SQLiteConnection) async throws -> T
    ) async throws -> T {
        if !holdingTurn { try await turn.acquire() }
        defer { turn.release() }
        transactions.add(1, ordering: .relaxed)
        return try await body(connection)
    }

    /// Runs `body` as one immediate transaction, in turn (see ``alone(holdingTurn:_:)``).
    func transaction<T: Sendable>(
        holdingTurn: Bool = false,
        _ body: @Sendable (SQLiteConnection) async throws -> T
    ) async throws -> T {
        try await alone(holdingTurn: holdingTurn) { connection in
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
        try await alone { connection in
            try await connection.query(
                "DELETE FROM pullsync_rate_events WHERE expires_at <= ?1 RETURNING 1",
                [.integer(Self.int(now))]
            ).count
        }
    }

    static func int(_ timestamp: Timestamp) -> SQLiteInt64 { SQLiteInt64(timestamp.nanosecondsSinceEpoch) }

    /// The parameters a statement may bind at most in any SQLite (`SQLITE_MAX_VARIABLE_NUMBER`
    /// before 3.32).
    static let maxParameters = 999

    /// `values`, `columns` to a row, split into as few statements as ``maxParameters`` allows,
    /// each with its rows' placeholders: `(?1, ?2), (?3, ?4), …`.
    static func statements(_ values: [SQLiteData], columns: Int) -> [(placeholders: String, values: [SQLiteData])] {
        let perStatement = maxParameters / columns * columns
        return stride(from: 0, to: values.count, by: perStatement).map { start in
            let part = Array(values[start..<min(start + perStatement, values.count)])
            let placeholders = (0..<part.count / columns).map { row in
                "(" + (1...columns).map { "?\(row * columns + $0)" }.joined(separator: ", ") + ")"
            }.joined(separator: ", ")
            return (placeholders, part)
        }
    }
}

/// A store operation that can't go on.
package struct SQLiteStoreError: Error, Sendable, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}
