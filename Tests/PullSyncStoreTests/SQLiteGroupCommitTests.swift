import PullSync
import PullSyncSQLite
import PullSyncTesting
import Testing

/// UID writes that queue while another transaction runs are stored together in the next one,
/// each EC's as its own transaction would store them.
@Suite("SQLite: writes that wait go in one transaction")
struct SQLiteGroupCommitTests {
    @Test("Twelve writes queued behind a transaction: one transaction, and each caller gets its own results")
    func queuedWritesShareATransaction() async throws {
        let path = String(try await freshURL(.sqlite).dropFirst("sqlite:".count))
        let store = try await SQLiteStore.open(path: path)
        // ECs 1...10 have a root entry, EC 11 is withdrawn, EC 12 is unknown; EC 1 already has a
        // UID for b.example, so a write that expects none conflicts.
        for n in 1...11 { _ = try await store.createRoot(for: edgeCookie(n), at: t0) }
        _ = try await store.withdraw(ecHash: ecHash(11), at: t0)
        _ = try await store.write(
            [UIDWrite(sourceDomain: "b.example", value: uid("old"), expected: nil)],
            ecHash: ecHash(1)
        )
        let before = store.transactionCount

        var byEC: [Int: [WriteResult]] = [:]
        try await withThrowingTaskGroup(of: (Int, [WriteResult]).self) { group in
            try await store.holdingTurn {
                for n in 1...12 {
                    group.addTask {
                        let writes = [
                            UIDWrite(sourceDomain: "a.example", value: uid("a\(n)"), expected: nil),
                            UIDWrite(sourceDomain: "b.example", value: uid("b\(n)"), expected: nil),
                        ]
                        return (n, try await store.write(writes, ecHash: ecHash(n)))
                    }
                }
                // Every write waits behind the held turn before any transaction runs.
                try #require(await eventually { store.queuedWriteCount == 12 })
            }
            for try await (n, result) in group { byEC[n] = result }
        }

        #expect(byEC[1] == [.stored, .conflict])
        for n in 2...10 { #expect(byEC[n] == [.stored, .stored], "EC \(n)") }
        #expect(byEC[11] == [.withdrawn, .withdrawn])
        #expect(byEC[12] == [.unknownEC, .unknownEC])
        #expect(store.transactionCount - before == 1)
        #expect(try await store.record(ecHash: ecHash(7))?.partners["b.example"]?.uid == "b7")
        #expect(try await store.record(ecHash: ecHash(1))?.partners["b.example"]?.uid == "old")
        #expect(store.queuedWriteCount == 0)
        try await store.close()
    }

    @Test(
        "A leader cancelled before its turn fails alone: the write queued behind it is stored",
        .timeLimit(.minutes(1))  // a queue left without a leader would hang the follower
    )
    func cancelledLeaderHandsTheQueueOn() async throws {
        let path = String(try await freshURL(.sqlite).dropFirst("sqlite:".count))
        let store = try await SQLiteStore.open(path: path)
        for n in 1...2 { _ = try await store.createRoot(for: edgeCookie(n), at: t0) }
        func write(_ n: Int) async throws -> [WriteResult] {
            try await store.write(
                [UIDWrite(sourceDomain: "a.example", value: uid("a\(n)"), expected: nil)],
                ecHash: ecHash(n)
            )
        }

        let (leader, follower) = try await store.holdingTurn {
            let leader = Task { try await write(1) }
            try #require(await eventually { store.queuedWriteCount == 1 })
            let follower = Task { try await write(2) }
            try #require(await eventually { store.queuedWriteCount == 2 })
            leader.cancel()
            // The leader leaves the queue once it sees the cancellation, before the turn is free.
            try #require(await eventually { store.queuedWriteCount == 1 })
            return (leader, follower)
        }

        await #expect(throws: CancellationError.self) { try await leader.value }
        #expect(try await follower.value == [.stored])
        #expect(try await store.record(ecHash: ecHash(2))?.partners["a.example"]?.uid == "a2")
        #expect(try await store.record(ecHash: ecHash(1))?.partners["a.example"] == nil)
        #expect(store.queuedWriteCount == 0)
        try await store.close()
    }
}
