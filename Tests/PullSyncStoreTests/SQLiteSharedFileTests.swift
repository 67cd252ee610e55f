import PullSync
import PullSyncSQLite
import Testing

/// A backfill (or `explain --store`) beside a running `serve` opens the same SQLite file from a
/// second process: each waits for the other's transaction instead of failing.
@Suite("Two stores on one SQLite file")
struct SQLiteSharedFileTests {
    @Test("Concurrent writers on one file: every operation succeeds and every write is kept")
    func twoWriters() async throws {
        let path = String(try await freshURL(.sqlite).dropFirst("sqlite:".count))
        let first = try await SQLiteStore.open(path: path)
        let second = try await SQLiteStore.open(path: path)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (lane, store) in [first, second].enumerated() {
                group.addTask {
                    for n in stride(from: lane + 1, through: 400, by: 2) {
                        _ = try await store.createRoot(for: edgeCookie(n), at: t0)
                        let admitted = try await store.acquire(
                            [RateLimitRequest(key: pullKey("shared", "1"), policy: RateLimitPolicy(calls: 1_000))],
                            at: t0
                        )
                        #expect(admitted == [true])
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await second.record(ecHash: ecHash(399)) != nil)
        #expect(try await first.record(ecHash: ecHash(400)) != nil)
        #expect(try await first.count(key: pullKey("shared", "1"), window: .seconds(3600), at: t0) == 400)
        try await first.close()
        try await second.close()
    }
}
