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

    let client: PostgresClient
    private let secret: [UInt8]
    let operationTimeout: Duration
    let budgetClock: BudgetClock
    let statements = Atomic<Int>(0)
    /// UID writes waiting for the statement that stores them (see ``write(_:ecHash:)``).
    let writeGroup = GroupCommit<PendingWrite, [WriteResult]>(maxBatch: 256)
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

    /// UID writes queued for the next statement (tests).
    package var queuedWriteCount: Int { writeGroup.waitingCount }


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
