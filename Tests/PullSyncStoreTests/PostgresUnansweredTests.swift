import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import PullSync
import PullSyncStorage
import PullSyncTesting
import Synchronization
import Testing

@testable import PullSyncPostgres

/// Statements that PostgreSQL won't answer: a query on a connection the server has just closed
/// (PostgresNIO drops the write, so the store checks and writes in one turn of the connection's
/// event loop), and one it doesn't answer in time (the store closes its connection).
@Suite("PostgreSQL statements left unanswered")
struct PostgresUnansweredTests {
    @Test(
        "A query on a closed connection fails at once and names the problem",
        .enabled(if: TestPostgres.isAvailable)
    )
    func closedConnection() async throws {
        let url = try PostgresStoreURL(parsing: try await TestPostgres.shared.freshURL())
        let connection = try await PostgresConnection.connect(
            configuration: PostgresStore.connectionConfiguration(url),
            id: 1,
            logger: Logger(label: "closed-connection-test")
        )
        let answer = try await PostgresStore.send("SELECT 41 + 1", on: connection) { rows in
            var values: [Int] = []
            for try await value in rows.decode(Int.self) { values.append(value) }
            return values
        }
        #expect(answer == [42])

        try await connection.close()
        // Without the check this awaits forever.
        let outcome = try #require(
            await finishing(within: .seconds(300)) {
                try await PostgresStore.send("SELECT 1", on: connection) { _ in 0 }
            },
            "the query on a closed connection never ended"
        )
        guard case .failure(let error) = outcome else {
            Issue.record("a closed connection answered: \(outcome)")
            return
        }
        #expect("\(error)" == "the connection to PostgreSQL closed (the server stopped or restarted)")
    }

    @Test(
        "A statement PostgreSQL doesn't answer in time fails at the timeout, and the next one is answered",
        .enabled(if: TestPostgres.isAvailable)
    )
    func unansweredStatement() async throws {
        let url = try PostgresStoreURL(parsing: try await TestPostgres.shared.freshURL())
        var logger = Logger(label: "unanswered-statement-test")
        logger.logLevel = .warning
        // 5 s: the next operation (a new connection, then a query) must fit in it on a busy machine.
        let store = try await PostgresStore.open(url, operationTimeout: .seconds(5), logger: logger)
        try await store.whileRunning {
            // A statement that doesn't answer in the test's life (an hour: a hung server's latency).
            // Only the 5 s operation timeout can end it (waiting for an answer can't be cancelled,
            // so the store closes the connection); the hang guard turns a wait for the answer into
            // a failure, with no elapsed-time assertion.
            let outcome = try #require(
                await finishing(within: .seconds(300)) {
                    try await store.run("SELECT pg_sleep(3600)") { _ in 0 }
                },
                "the operation never ended"
            )
            guard case .failure(let error) = outcome else {
                Issue.record("an hour-long statement answered within the 5 s timeout: \(outcome)")
                return
            }
            #expect("\(error)" == "no answer from PostgreSQL within 5.0 seconds")
            // The pool opens another connection: the next operation is answered.
            #expect(try await store.record(ecHash: "no-such-ec") == nil)
        }
    }

    /// What `send` relies on: on the event loop's executor, a job the loop already has queued
    /// (as a channel's close would be) doesn't run between the check and the call that writes.
    @Test("Nothing queued on the event loop runs between code on its executor and the call it makes")
    func callContinuesInTheSameTurn() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let queuedJobRan = Flag()
        let seen = await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
            let onLoop = loop.inEventLoop
            loop.execute { queuedJobRan.set() }
            let inherited = await Self.callerIsolated(queuedJobRan)
            let concurrent = await Self.concurrent(queuedJobRan)
            return (onLoop, inherited, concurrent)
        }
        #expect(seen.0, "the preferred executor runs the code on the event loop")
        #expect(seen.1 == false, "a nonisolated(nonsending) call (PostgresNIO's query) continues in the same turn")
        #expect(seen.2 == false, "so does a @concurrent one")
        // The queued job does run, afterwards.
        try await loop.submit {}.get()
        #expect(queuedJobRan.isSet)
    }

    private nonisolated(nonsending) static func callerIsolated(_ flag: Flag) async -> Bool { flag.isSet }

    @concurrent private static func concurrent(_ flag: Flag) async -> Bool { flag.isSet }
}

private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
