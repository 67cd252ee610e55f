import PullSync
import Testing

/// What every identity graph must do, run against each store.
@Suite("Identity graph, on every store")
struct IdentityGraphStoreTests {
    @Test("An unknown EC has no record; createRoot creates it once", arguments: StoreKind.available)
    func rootEntries(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let graph = opened.store
            #expect(try await graph.record(ecHash: ecHash(1)) == nil)

            let created = try await graph.createRoot(for: edgeCookie(1), at: t0)
            let again = try await graph.createRoot(for: edgeCookie(1), at: t0 + .seconds(60))

            #expect(created == ECRecord(ecHash: ecHash(1), ecID: edgeCookie(1).value, createdAt: t0))
            #expect(again == created, "a second createRoot keeps the first entry")
            #expect(try await graph.record(ecHash: ecHash(1)) == created)
            #expect(try await graph.record(ecHash: ecHash(2)) == nil)
        }
    }

    @Test(
        "Conditional writes: stored when the entry is as expected, conflict otherwise",
        arguments: StoreKind.available
    )
    func conditionalWrites(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let graph = opened.store
            _ = try await graph.createRoot(for: edgeCookie(1), at: t0)
            let first = uid("u-1", at: t0 + .seconds(1))
            let expiring = uid("u-2", at: t0 + .seconds(2), expires: t0 + .seconds(600))

            let results = try await graph.write(
                [
                    UIDWrite(sourceDomain: "a.example", value: first, expected: nil),
                    UIDWrite(sourceDomain: "b.example", value: expiring, expected: nil),
                ],
                ecHash: ecHash(1)
            )
            #expect(results == [.stored, .stored])

            // A writer that saw "missing" loses to the UID stored meanwhile; one that saw the
            // current entry replaces it; one that saw an older entry loses.
            let newer = uid("u-3", at: t0 + .seconds(3))
            let stale = uid("u-old", at: t0)
            let second = try await graph.write(
                [
                    UIDWrite(sourceDomain: "a.example", value: uid("x", at: t0 + .seconds(4)), expected: nil),
                    UIDWrite(sourceDomain: "b.example", value: newer, expected: expiring),
                    UIDWrite(sourceDomain: "c.example", value: uid("y", at: t0 + .seconds(4)), expected: stale),
                ],
                ecHash: ecHash(1)
            )
            #expect(second == [.conflict, .stored, .conflict])

            let record = try #require(try await graph.record(ecHash: ecHash(1)))
            #expect(record.partners == ["a.example": first, "b.example": newer])
        }
    }

    @Test("A batch of 250 writes (more than one SQL statement binds) stores each", arguments: StoreKind.available)
    func largeWriteBatch(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let graph = opened.store
            _ = try await graph.createRoot(for: edgeCookie(1), at: t0)
            let before = uid("old", at: t0)
            _ = try await graph.write([UIDWrite(sourceDomain: "p3.example", value: before, expected: nil)], ecHash: ecHash(1))
            let writes = (0..<250).map { n in
                UIDWrite(sourceDomain: "p\(n).example", value: uid("u\(n)", at: t0 + .seconds(1)), expected: nil)
            }
            let results = try await graph.write(writes, ecHash: ecHash(1))
            #expect(results.indices.filter { results[$0] != .stored } == [3], "p3 had a UID its writer didn't see")
            let record = try #require(try await graph.record(ecHash: ecHash(1)))
            #expect(record.partners.count == 250)
            #expect(record.partners["p249.example"] == uid("u249", at: t0 + .seconds(1)))
            #expect(record.partners["p3.example"] == before)
        }
    }

    @Test("A partner-given expiry survives the round trip", arguments: StoreKind.available)
    func expiryRoundTrip(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let graph = opened.store
            _ = try await graph.createRoot(for: edgeCookie(1), at: t0)
            let value = uid("u", at: t0, expires: t0 + .seconds(90))
            _ = try await graph.write(
                [UIDWrite(sourceDomain: "a.example", value: value, expected: nil)],
                ecHash: ecHash(1)
            )

            let stored = try #require(try await graph.record(ecHash: ecHash(1))?.partners["a.example"])
            #expect(stored == value)
            #expect(stored.isFresh(at: t0 + .seconds(89), ttl: .seconds(1)))
            #expect(!stored.isFresh(at: t0 + .seconds(90), ttl: .seconds(3600)))
        }
    }

    @Test("Writes for an unknown EC or a withdrawn one store nothing", arguments: StoreKind.available)
    func unknownAndWithdrawn(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let graph = opened.store
            let write = UIDWrite(sourceDomain: "a.example", value: uid("u"), expected: nil)
            #expect(try await graph.write([write, write], ecHash: ecHash(9)) == [.unknownEC, .unknownEC])
            #expect(try await graph.record(ecHash: ecHash(9)) == nil, "a write never creates a root entry")

            _ = try await graph.createRoot(for: edgeCookie(1), at: t0)
            #expect(try await graph.write([write], ecHash: ecHash(1)) == [.stored])
            #expect(try await graph.withdraw(ecHash: ecHash(1), at: t0 + .seconds(5)))
            #expect(!(try await graph.withdraw(ecHash: ecHash(2), at: t0)), "withdrawing an unknown EC says so")

            let after = try #require(try await graph.record(ecHash: ecHash(1)))
            #expect(after.withdrawn)
            #expect(after.partners.isEmpty, "withdrawal forgets the UIDs")
            let late = UIDWrite(sourceDomain: "b.example", value: uid("late"), expected: nil)
            #expect(try await graph.write([late], ecHash: ecHash(1)) == [.withdrawn])
            #expect(try await graph.record(ecHash: ecHash(1))?.partners.isEmpty == true)
        }
    }

    @Test(
        "Revocation forgets the UID; a write planned before it stores nothing, one planned after it stores",
        arguments: StoreKind.available
    )
    func revocation(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let graph = opened.store
            _ = try await graph.createRoot(for: edgeCookie(1), at: t0)
            let a = uid("ua", at: t0)
            let b = uid("ub", at: t0)
            _ = try await graph.write(
                [
                    UIDWrite(sourceDomain: "a.example", value: a, expected: nil),
                    UIDWrite(sourceDomain: "b.example", value: b, expected: nil),
                ],
                ecHash: ecHash(1)
            )
            let revokedAt = t0 + .seconds(10)
            // c has no UID (a call to it may be in flight): revoked all the same, nothing forgotten.
            let forgotten = try await graph.revoke(["a.example", "c.example"], ecHash: ecHash(1), at: revokedAt)
            #expect(forgotten == ["a.example"])
            #expect(try await graph.record(ecHash: ecHash(1))?.partners == ["b.example": b])

            // Calls planned before the revocation, answering after it: a refresh of a's UID and
            // c's first UID. Neither is stored; b (not revoked) is.
            let late = try await graph.write(
                [
                    UIDWrite(sourceDomain: "a.example", value: uid("ua2", at: t0 + .seconds(11)), expected: a, plannedAt: t0 + .seconds(5)),
                    UIDWrite(sourceDomain: "c.example", value: uid("uc", at: t0 + .seconds(11)), expected: nil, plannedAt: t0 + .seconds(5)),
                    UIDWrite(sourceDomain: "b.example", value: uid("ub2", at: t0 + .seconds(11)), expected: b, plannedAt: t0 + .seconds(5)),
                ],
                ecHash: ecHash(1)
            )
            #expect(late == [.revoked, .revoked, .stored])
            #expect(try await graph.record(ecHash: ecHash(1))?.partners.keys.sorted() == ["b.example"])
            // Backfill leaves a revoked pair alone (its consent refused the partner last).
            let query = BackfillQuery(sourceDomain: "a.example", ttl: .seconds(60), now: t0 + .seconds(20))
            #expect(try await opened.store.countBackfillCandidates(query, after: nil) == 0)
            let other = BackfillQuery(sourceDomain: "d.example", ttl: .seconds(60), now: t0 + .seconds(20))
            #expect(try await opened.store.countBackfillCandidates(other, after: nil) == 1, "control")

            // Consent given again: a call planned after the revocation stores, once.
            let again = uid("ua3", at: t0 + .seconds(31))
            var results: [WriteResult] = []
            for value in [again, uid("x", at: t0 + .seconds(31))] {
                results += try await graph.write(
                    [UIDWrite(sourceDomain: "a.example", value: value, expected: nil, plannedAt: t0 + .seconds(30))],
                    ecHash: ecHash(1)
                )
            }
            #expect(results == [.stored, .conflict])
            #expect(try await graph.record(ecHash: ecHash(1))?.partners["a.example"] == again)
            #expect(try await opened.store.countBackfillCandidates(query, after: nil) == 0, "fresh again")

            // Unknown and withdrawn ECs: nothing to revoke, nothing created.
            #expect(try await graph.revoke(["a.example"], ecHash: ecHash(9), at: revokedAt) == [])
            #expect(try await graph.record(ecHash: ecHash(9)) == nil)
            #expect(try await graph.withdraw(ecHash: ecHash(1), at: t0 + .seconds(40)))
            #expect(try await graph.revoke(["b.example"], ecHash: ecHash(1), at: t0 + .seconds(41)) == [])
            #expect(try await graph.record(ecHash: ecHash(1))?.partners.isEmpty == true)
        }
    }

    @Test("Concurrent writers that all saw 'missing': exactly one UID is stored", arguments: StoreKind.available)
    func concurrentFirstWriters(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let graph = opened.store
            _ = try await graph.createRoot(for: edgeCookie(1), at: t0)
            let results = try await withThrowingTaskGroup(of: WriteResult?.self) { group in
                for n in 0..<20 {
                    group.addTask {
                        try await graph.write(
                            [UIDWrite(sourceDomain: "a.example", value: uid("w\(n)"), expected: nil)],
                            ecHash: ecHash(1)
                        ).first
                    }
                }
                var results: [WriteResult?] = []
                for try await result in group { results.append(result) }
                return results
            }
            #expect(results.count { $0 == .stored } == 1)
            #expect(results.count { $0 == .conflict } == 19)
        }
    }

    @Test("The EC secret is created once and kept", arguments: StoreKind.available)
    func ecSecret(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let first = try await opened.store.ecSecret()
            let second = try await opened.store.ecSecret()
            #expect(first.count == 32)
            #expect(first == second)
        }
    }

    @Test("What a persistent store keeps survives closing and opening it again", arguments: StoreKind.persistent)
    func survivesReopening(kind: StoreKind) async throws {
        let url = try await freshURL(kind)
        let secret = try await withStore(kind, url: url) { opened in
            _ = try await opened.store.createRoot(for: edgeCookie(1), at: t0)
            _ = try await opened.store.write(
                [UIDWrite(sourceDomain: "a.example", value: uid("kept"), expected: nil)],
                ecHash: ecHash(1)
            )
            _ = try await opened.store.acquire(
                [RateLimitRequest(key: pullKey("a", ecHash(1)), policy: RateLimitPolicy(calls: 1))],
                at: t0
            )
            return try await opened.store.ecSecret()
        }
        try await withStore(kind, url: url) { opened in
            #expect(try await opened.store.record(ecHash: ecHash(1))?.partners["a.example"]?.uid == "kept")
            #expect(try await opened.store.ecSecret() == secret)
            let again = try await opened.store.acquire(
                [RateLimitRequest(key: pullKey("a", ecHash(1)), policy: RateLimitPolicy(calls: 1))],
                at: t0 + .seconds(1)
            )
            #expect(again == [false], "the rate-limit count outlives a restart")
        }
    }
}
