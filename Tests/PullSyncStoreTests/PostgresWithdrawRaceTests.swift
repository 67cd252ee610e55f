import Logging
import PostgresNIO
import PullSync
import PullSyncPostgres
import PullSyncStorage
import PullSyncTesting
import Testing

/// A withdrawal (or revocation) that has to wait for a UID write in progress on another node must
/// see that UID once it may go on: forget it, and queue its partner's opt-out. Ordered by
/// PostgreSQL's own lock wait (`pg_blocking_pids`), not by time.
@Suite("PostgreSQL: withdrawal after a concurrent write", .enabled(if: TestPostgres.isAvailable), .serialized)
struct PostgresWithdrawRaceTests {
    @Test(arguments: ["withdraw", "revoke"])
    func theCommittedUIDIsForgottenAndItsPartnerTold(operation: String) async throws {
        try await withStore(.postgres) { opened in
            let store = opened.store
            _ = try await store.createRoot(for: edgeCookie(1), at: t0)
            let hash = ecHash(1)
            // A write in progress, as the store's own write does it: the root row share-locked,
            // the UID inserted, not committed yet.
            let writer = try await connectPostgres(opened.url, id: 2)
            let writerPID = try await Self.count(writer, "SELECT pg_backend_pid()")
            try await Self.run(writer, "BEGIN")
            try await Self.run(writer, "SELECT 1 FROM pullsync_ecs WHERE ec_hash = '\(hash)' FOR SHARE")
            try await Self.run(
                writer,
                """
                INSERT INTO pullsync_uids (ec_hash, source_domain, uid, synced_at)
                VALUES ('\(hash)', 'a.example', 'u-a', \(t0.nanosecondsSinceEpoch))
                """
            )
            async let done: Bool = {
                if operation == "withdraw" {
                    return try await store.withdraw(ecHash: hash, at: t0 + .seconds(10), notifying: ["a.example"])
                }
                let forgotten = try await store.revoke(["a.example"], ecHash: hash, at: t0 + .seconds(10), notifying: ["a.example"])
                return forgotten == ["a.example"]
            }()
            // The operation is waiting for the writer's lock; then the write commits.
            let observer = try await connectPostgres(opened.url, id: 3)
            #expect(
                await eventually {
                    let blocked = try? await Self.count(
                        observer,
                        "SELECT count(*)::integer FROM pg_stat_activity WHERE \(writerPID) = ANY(pg_blocking_pids(pid))"
                    )
                    return (blocked ?? 0) > 0
                }
            )
            try await Self.run(writer, "COMMIT")
            #expect(try await done)
            #expect(try await store.record(ecHash: hash)?.partners == [:], "the UID committed meanwhile is forgotten")
            let told = try await store.claimOptOuts(at: t0 + .seconds(10), limit: 10, until: t0 + .seconds(11))
            #expect(told.map(\.sourceDomain) == ["a.example"], "and its partner is told")
            try await writer.close()
            try await observer.close()
        }
    }

    static func run(_ connection: PostgresConnection, _ sql: String) async throws {
        let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: connection.logger)
        for try await _ in rows {}
    }

    static func count(_ connection: PostgresConnection, _ sql: String) async throws -> Int {
        let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: connection.logger)
        var count = 0
        for try await value in rows.decode(Int.self) { count = value }
        return count
    }
}
