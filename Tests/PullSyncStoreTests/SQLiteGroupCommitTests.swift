import PullSync
import PullSyncSQLite
import PullSyncTesting
import Testing

/// UID writes and new ECs' root entries that queue while another transaction runs are made
/// together in the next one, each as its own transaction would make it.
@Suite("SQLite: writes and root entries that wait go in one transaction")
struct SQLiteGroupCommitTests {
    @Test("Thirteen writes queued behind a transaction: one transaction, and each caller gets its own results")
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
                try #require(await eventually { store.queuedChangeCount == 12 })
                // EC 2's a.example again, expecting the write queued before it: it sees that write.
                group.addTask {
                    let again = UIDWrite(sourceDomain: "a.example", value: uid("a2-again"), expected: uid("a2"))
                    return (13, try await store.write([again], ecHash: ecHash(2)))
                }
                try #require(await eventually { store.queuedChangeCount == 13 })
            }
            for try await (n, result) in group { byEC[n] = result }
        }

        #expect(byEC[1] == [.stored, .conflict])
        for n in 2...10 { #expect(byEC[n] == [.stored, .stored], "EC \(n)") }
        #expect(byEC[11] == [.withdrawn, .withdrawn])
        #expect(byEC[12] == [.unknownEC, .unknownEC])
        #expect(byEC[13] == [.stored])
        #expect(store.transactionCount - before == 1)
        #expect(try await store.record(ecHash: ecHash(2))?.partners["a.example"]?.uid == "a2-again")
        #expect(try await store.record(ecHash: ecHash(7))?.partners["b.example"]?.uid == "b7")
        #expect(try await store.record(ecHash: ecHash(1))?.partners["b.example"]?.uid == "old")
        #expect(store.queuedChangeCount == 0)
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
            try #require(await eventually { store.queuedChangeCount == 1 })
            let follower = Task { try await write(2) }
            try #require(await eventually { store.queuedChangeCount == 2 })
            leader.cancel()
            // The leader leaves the queue once it sees the cancellation, before the turn is free.
            try #require(await eventually { store.queuedChangeCount == 1 })
            return (leader, follower)
        }

        await #expect(throws: CancellationError.self) { try await leader.value }
        #expect(try await follower.value == [.stored])
        #expect(try await store.record(ecHash: ecHash(2))?.partners["a.example"]?.uid == "a2")
        #expect(try await store.record(ecHash: ecHash(1))?.partners["a.example"] == nil)
        #expect(store.queuedChangeCount == 0)
        try await store.close()
    }

    @Test("Root entries queued with a write: one transaction; only an entry it created counts its calls")
    func queuedRootEntriesShareATransaction() async throws {
        let path = String(try await freshURL(.sqlite).dropFirst("sqlite:".count))
        let store = try await SQLiteStore.open(path: path)
        let once = RateLimitPolicy(calls: 1, window: .seconds(60))
        @Sendable func call(_ partner: String, _ n: Int) -> RateLimitRequest {
            RateLimitRequest(key: pullKey(partner, ecHash(n)), policy: once)
        }
        // EC 1 is there already; EC 4's call to a is used up.
        _ = try await store.createRoot(for: edgeCookie(1), at: t0)
        #expect(try await store.acquire([call("a", 4)], at: t0) == [true])
        let before = store.transactionCount

        typealias Made = (record: ECRecord, admissions: [LeasedAdmission]?)
        let (made, written) = try await store.holdingTurn {
            // Queued one by one, so that the batch's order is known.
            @Sendable func root(_ n: Int, admitting calls: [RateLimitRequest]) async throws -> Made {
                try await store.createRoot(for: edgeCookie(n), at: t0, consent: nil, admitting: calls, lease: nil)
            }
            let steps: [@Sendable () async throws -> Made] = [
                { try await root(2, admitting: [call("a", 2), call("b", 2)]) },
                { try await root(1, admitting: [call("a", 1)]) },
                { (try await store.createRoot(for: edgeCookie(3), at: t0), nil) },
                // EC 2 again, after the entry above: there already, so nothing is counted.
                { try await root(2, admitting: [call("c", 2)]) },
                { try await root(4, admitting: [call("a", 4)]) },
            ]
            var tasks: [Task<Made, any Error>] = []
            for (index, step) in steps.enumerated() {
                tasks.append(Task { try await step() })
                try #require(await eventually { store.queuedChangeCount == index + 1 })
            }
            let write = Task {
                try await store.write(
                    [UIDWrite(sourceDomain: "a.example", value: uid("a1"), expected: nil)],
                    ecHash: ecHash(1)
                )
            }
            try #require(await eventually { store.queuedChangeCount == 6 })
            return (tasks, write)
        }
        var results: [Made] = []
        for task in made { results.append(try await task.value) }

        #expect(store.transactionCount - before == 1)
        #expect(results.map(\.record.ecHash) == [ecHash(2), ecHash(1), ecHash(3), ecHash(2), ecHash(4)])
        #expect(results[0].admissions == [.admitted, .admitted])
        #expect(results[1].admissions == nil, "EC 1 was there already")
        #expect(results[2].admissions == nil)
        #expect(results[3].admissions == nil, "EC 2 was created earlier in the same transaction")
        #expect(results[4].admissions == [.rateLimited])
        #expect(try await written.value == [.stored])
        #expect(try await store.count(key: pullKey("a", ecHash(2)), window: .seconds(60), at: t0) == 1)
        #expect(try await store.count(key: pullKey("c", ecHash(2)), window: .seconds(60), at: t0) == 0)
        #expect(try await store.record(ecHash: ecHash(3)) != nil)
        #expect(try await store.record(ecHash: ecHash(1))?.partners["a.example"]?.uid == "a1")
        try await store.close()
    }
}
