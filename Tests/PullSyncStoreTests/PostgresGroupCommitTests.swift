import Logging
import PostgresNIO
import PullSync
import PullSyncPostgres
import PullSyncStorage
import PullSyncTesting
import Testing

/// UID writes that arrive while another write's statement runs go in one statement after it,
/// each request's as its own statement would store them. The first statement is held by a row
/// lock taken on another connection (PostgreSQL's own wait, not time).
@Suite("PostgreSQL: writes that wait go in one statement", .enabled(if: TestPostgres.isAvailable), .serialized)
struct PostgresGroupCommitTests {
    @Test("Writes queued behind a statement: one statement, each request's own results and leases")
    func queuedWritesShareAStatement() async throws {
        try await withStore(.postgres) { opened in
            let store = try #require(opened.store as? PostgresStore)
            // ECs 1...10 have a root entry, EC 11 is withdrawn, EC 12 is unknown; EC 3 already has
            // a UID for b.example, so a write that expects none conflicts.
            for n in 1...11 { _ = try await store.createRoot(for: edgeCookie(n), at: t0) }
            _ = try await store.withdraw(ecHash: ecHash(11), at: t0, notifying: [])
            _ = try await store.write([write("b.example", "old")], ecHash: ecHash(3))
            let policy = RateLimitPolicy(calls: 5, window: .seconds(60))
            func call(_ partner: String, _ n: Int) -> RateLimitRequest {
                RateLimitRequest(key: pullKey(partner, ecHash(n)), policy: policy)
            }
            // Requests 4 and 5 hold leases on their a.example calls; request 5 gives back
            // another holder's only.
            for n in 4...5 {
                let lease = CallLease(holder: "request-\(n)", expiresAt: t0 + .seconds(60))
                #expect(try await store.admit([call("a", n)], lease: lease, at: t0) == [.admitted])
            }
            // Request 14 gives back its lease on b for EC 6 with no UID to write.
            let b6 = call("b", 6)
            let lease14 = CallLease(holder: "request-14", expiresAt: t0 + .seconds(60))
            #expect(try await store.admit([b6], lease: lease14, at: t0) == [.admitted])

            // Another transaction locks EC 1's root row: the first write's statement waits for it.
            let blocker = try await connectPostgres(opened.url, id: 2)
            let blockerPID = try await PostgresWithdrawRaceTests.count(blocker, "SELECT pg_backend_pid()")
            try await PostgresWithdrawRaceTests.run(blocker, "BEGIN")
            try await PostgresWithdrawRaceTests.run(
                blocker,
                "SELECT 1 FROM pullsync_ecs WHERE ec_hash = '\(ecHash(1))' FOR UPDATE"
            )
            let before = store.roundTrips
            let results = try await withThrowingTaskGroup(of: (Int, [WriteResult]).self) { group in
                group.addTask { (1, try await store.write([write("a.example", "a1")], ecHash: ecHash(1))) }
                let observer = try await connectPostgres(opened.url, id: 3)
                try #require(
                    await eventually {
                        let blocked = try? await PostgresWithdrawRaceTests.count(
                            observer,
                            "SELECT count(*)::integer FROM pg_stat_activity WHERE \(blockerPID) = ANY(pg_blocking_pids(pid))"
                        )
                        return (blocked ?? 0) > 0
                    }
                )
                try await observer.close()
                // Queued one by one, so that the batch's order is known.
                for n in 2...12 {
                    group.addTask {
                        let writes = [write("a.example", "a\(n)"), write("b.example", "b\(n)")]
                        let holder = n == 5 ? "someone-else" : "request-\(n)"
                        let keys = n == 4 || n == 5 ? [pullKey("a", ecHash(n))] : []
                        return (n, try await store.write(writes, ecHash: ecHash(n), releasing: keys, holder: holder))
                    }
                    try #require(await eventually { store.queuedWriteCount == n - 1 })
                }
                // EC 2's a.example again, expecting the write queued before it: the statement after.
                group.addTask {
                    (13, try await store.write([write("a.example", "a2-again", expected: "a2")], ecHash: ecHash(2)))
                }
                try #require(await eventually { store.queuedWriteCount == 12 })
                group.addTask {
                    (14, try await store.write([], ecHash: ecHash(6), releasing: [b6.key], holder: lease14.holder))
                }
                try #require(await eventually { store.queuedWriteCount == 13 })
                try await PostgresWithdrawRaceTests.run(blocker, "COMMIT")
                var results: [Int: [WriteResult]] = [:]
                for try await (n, result) in group { results[n] = result }
                return results
            }
            try await blocker.close()

            #expect(results[1] == [.stored])
            #expect(results[3] == [.stored, .conflict])
            for n in [2, 4, 5, 6, 7, 8, 9, 10] { #expect(results[n] == [.stored, .stored], "EC \(n)") }
            #expect(results[11] == [.withdrawn, .withdrawn])
            #expect(results[12] == [.unknownEC, .unknownEC])
            #expect(results[13] == [.stored])
            #expect(results[14] == [])
            // The held statement, the twelve queued behind it, and EC 2's second write.
            #expect(store.roundTrips - before == 3)
            #expect(store.queuedWriteCount == 0)
            #expect(try await store.record(ecHash: ecHash(7))?.partners["b.example"]?.uid == "b7")
            #expect(try await store.record(ecHash: ecHash(3))?.partners["b.example"]?.uid == "old")
            #expect(try await store.record(ecHash: ecHash(2))?.partners["a.example"]?.uid == "a2-again")
            #expect(try await store.record(ecHash: ecHash(11))?.partners == [:])
            // Request 4's lease is given back; request 5's is not (another holder's release).
            let elsewhere = CallLease(holder: "request-9", expiresAt: t0 + .seconds(60))
            #expect(try await store.admit([call("a", 4)], lease: elsewhere, at: t0) == [.admitted])
            #expect(try await store.admit([call("a", 5)], lease: elsewhere, at: t0) == [.leased])
            // Request 14's is given back with no write.
            #expect(try await store.admit([b6], lease: elsewhere, at: t0) == [.admitted])
        }
    }
}

/// A write of `domain`'s UID `value`, expecting the entry `expected` (or none).
private func write(_ domain: String, _ value: String, expected: String? = nil) -> UIDWrite {
    UIDWrite(sourceDomain: domain, value: uid(value), expected: expected.map { uid($0) })
}
