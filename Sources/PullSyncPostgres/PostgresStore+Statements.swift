import Logging
import PostgresNIO
import PullSyncKernel
import Synchronization

// Running one statement or one transaction within the operation timeout.
extension PostgresStore {
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

    /// Runs one prepared statement (prepared on each connection the first time it goes out
    /// there), collecting its rows, within the operation timeout (as ``run(_:_:)``).
    func run<Statement: PostgresPreparedStatement, Row: Sendable>(
        prepared statement: Statement,
        _ collect: @escaping @Sendable (AsyncThrowingMapSequence<PostgresRowSequence, Statement.Row>) async throws -> Row
    ) async throws -> Row {
        try await onConnection { connection in
            try await Self.whileOpen(connection) {
                try await collect(try await connection.execute(statement, logger: Self.quiet))
            }
        }
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
        try await whileOpen(connection) { try await collect(try await connection.query(query, logger: quiet)) }
    }

    /// Runs `send` on `connection`'s event loop if the connection is open: `send` must write its
    /// statement before it first suspends, so that the check and the write share one turn.
    private static func whileOpen<Row: Sendable>(
        _ connection: PostgresConnection,
        _ send: () async throws -> Row
    ) async throws -> Row {
        try await withTaskExecutorPreference(EventLoopTaskExecutor(connection.eventLoop)) {
            guard !connection.isClosed else {
                throw PostgresStoreError(
                    "the connection to PostgreSQL closed (the server stopped or restarted)",
                    notSent: true
                )
            }
            return try await send()
        }
    }

    /// PostgresClient's own queries log nothing either.
    private static let quiet = Logger(label: "pullsync.postgres.query", factory: { _ in SwiftLogNoOpLogHandler() })
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
