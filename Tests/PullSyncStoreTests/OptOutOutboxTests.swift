import PullSync
import PullSyncStorage
import Testing

/// Issue 19, opt-out propagation: the outbox is filled in the same step as the withdrawal or
/// revocation it follows, holds a (partner, EC) pair at most once, ever, and hands out what is
/// due, on every store.
@Suite("Opt-out outbox")
struct OptOutOutboxTests {
    /// Claims what is due at `now` for one second.
    static func claim(_ store: any PullSyncStore, at now: Timestamp, limit: Int = 10) async throws -> [OptOutTask] {
        try await store.claimOptOuts(at: now, limit: limit, until: now + .seconds(1))
    }

    static func store(_ store: any PullSyncStore, _ n: Int, _ domains: [String], at time: Timestamp = t0) async throws {
        let writes = domains.map { UIDWrite(sourceDomain: $0, value: uid("u-\($0)", at: time), expected: nil) }
        #expect(try await store.write(writes, ecHash: ecHash(n)) == domains.map { _ in .stored })
    }

    @Test("A withdrawal queues the partners with an endpoint whose UID the EC held, once", arguments: StoreKind.available)
    func withdrawal(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let store = opened.store
            _ = try await store.createRoot(for: edgeCookie(1), at: t0)
            try await Self.store(store, 1, ["a.example", "b.example", "quiet.example"])
            let notifying = ["a.example", "b.example", "never-called.example"]
            #expect(try await store.withdraw(ecHash: ecHash(1), at: t0 + .seconds(10), notifying: notifying))
            let due = try await Self.claim(store, at: t0 + .seconds(10))
            #expect(due.map(\.sourceDomain).sorted() == ["a.example", "b.example"])
            #expect(due.allSatisfy { $0.ecID == edgeCookie(1).value && $0.ecHash == ecHash(1) && $0.attempts == 0 })
            #expect(due.allSatisfy { $0.enqueuedAt == t0 + .seconds(10) })
            #expect(try await store.pendingOptOuts() == 2)
            // Not due before the withdrawal; the UIDs are gone; a second withdrawal adds nothing.
            #expect(try await Self.claim(store, at: t0 + .seconds(9)).isEmpty)
            #expect(try await store.record(ecHash: ecHash(1))?.partners == [:])
            _ = try await store.withdraw(ecHash: ecHash(1), at: t0 + .seconds(20), notifying: notifying)
            #expect(try await store.pendingOptOuts() == 2)
            // An unknown EC queues nothing.
            #expect(try await store.withdraw(ecHash: ecHash(9), at: t0, notifying: notifying) == false)
            #expect(try await store.pendingOptOuts() == 2)
        }
    }

    @Test("Settling: acknowledged and abandoned tasks never come back; a retry is due at its time", arguments: StoreKind.available)
    func settling(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let store = opened.store
            _ = try await store.createRoot(for: edgeCookie(1), at: t0)
            try await Self.store(store, 1, ["a.example", "b.example", "c.example"])
            _ = try await store.withdraw(ecHash: ecHash(1), at: t0, notifying: ["a.example", "b.example", "c.example"])
            let due = try await Self.claim(store, at: t0)
            #expect(due.count == 3)
            func task(_ domain: String) throws -> OptOutTask { try #require(due.first { $0.sourceDomain == domain }) }
            try await store.settleOptOut(try task("a.example"), .acknowledged, at: t0 + .seconds(1))
            try await store.settleOptOut(try task("b.example"), .abandoned, at: t0 + .seconds(1))
            try await store.settleOptOut(try task("c.example"), .retry(at: t0 + .seconds(60)), at: t0 + .seconds(1))
            #expect(try await store.pendingOptOuts() == 1)
            #expect(try await Self.claim(store, at: t0 + .seconds(59)).isEmpty)
            let later = try await Self.claim(store, at: t0 + .seconds(60))
            #expect(later.map(\.sourceDomain) == ["c.example"])
            #expect(later.first?.attempts == 1)
            // A settled task stays settled, whatever is recorded for it afterwards.
            try await store.settleOptOut(try task("a.example"), .retry(at: t0), at: t0 + .seconds(2))
            #expect(try await Self.claim(store, at: t0 + .seconds(3_600)).map(\.sourceDomain) == ["c.example"])
            // The limit, and the longest-waiting first.
            _ = try await store.createRoot(for: edgeCookie(2), at: t0)
            try await Self.store(store, 2, ["a.example"])
            _ = try await store.withdraw(ecHash: ecHash(2), at: t0 + .seconds(30), notifying: ["a.example"])
            let first = try await Self.claim(store, at: t0 + .seconds(7_200), limit: 1)
            #expect(first.map(\.ecHash) == [ecHash(2)], "due at 30 s, before c.example's 60 s")
        }
    }

    @Test("A revocation queues the revoked partners with an endpoint whose UID was forgotten; once per UID learned", arguments: StoreKind.available)
    func revocation(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let store = opened.store
            _ = try await store.createRoot(for: edgeCookie(1), at: t0)
            try await Self.store(store, 1, ["a.example", "b.example"])
            let forgotten = try await store.revoke(
                ["a.example", "b.example", "none.example"],
                ecHash: ecHash(1),
                at: t0 + .seconds(5),
                notifying: ["a.example", "none.example"]
            )
            #expect(forgotten.sorted() == ["a.example", "b.example"])
            let due = try await Self.claim(store, at: t0 + .seconds(5))
            #expect(due.map(\.sourceDomain) == ["a.example"], "b.example has no endpoint; none.example had no UID")
            try await store.settleOptOut(try #require(due.first), .acknowledged, at: t0 + .seconds(6))
            // Revoked again with nothing to forget: nothing to tell.
            _ = try await store.revoke(["a.example"], ecHash: ecHash(1), at: t0 + .seconds(7), notifying: ["a.example"])
            #expect(try await store.pendingOptOuts() == 0)
            // Consent given again and a UID learned again: the partner knows the EC anew, so
            // revoking it again tells it again, once.
            try await Self.store(store, 1, ["a.example"], at: t0 + .seconds(10))
            _ = try await store.revoke(["a.example"], ecHash: ecHash(1), at: t0 + .seconds(20), notifying: ["a.example"])
            _ = try await store.revoke(["a.example"], ecHash: ecHash(1), at: t0 + .seconds(21), notifying: ["a.example"])
            let again = try await Self.claim(store, at: t0 + .seconds(21))
            #expect(again.map(\.sourceDomain) == ["a.example"])
            #expect(again.first?.attempts == 0)
            #expect(again.first?.enqueuedAt == t0 + .seconds(20))
            try await store.settleOptOut(try #require(again.first), .acknowledged, at: t0 + .seconds(22))
            // A withdrawal now: a.example holds no UID, so nothing new.
            _ = try await store.withdraw(ecHash: ecHash(1), at: t0 + .seconds(30), notifying: ["a.example"])
            #expect(try await store.pendingOptOuts() == 0)
        }
    }

    @Test("Claims are exclusive: callers claiming at once get disjoint tasks; an unsettled claim lapses", arguments: StoreKind.available)
    func claims(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let store = opened.store
            for n in 1...20 {
                _ = try await store.createRoot(for: edgeCookie(n), at: t0)
                try await Self.store(store, n, ["a.example"])
                _ = try await store.withdraw(ecHash: ecHash(n), at: t0 + .seconds(Int64(n)), notifying: ["a.example"])
            }
            let now = t0 + .seconds(100)
            let claimed = try await withThrowingTaskGroup(of: [OptOutTask].self) { group in
                for _ in 0..<4 {
                    group.addTask { try await store.claimOptOuts(at: now, limit: 8, until: now + .seconds(120)) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let all = claimed.flatMap { $0 }.map(\.ecHash)
            #expect(all.count == 20, "every task claimed, whatever the interleaving")
            #expect(Set(all).count == 20, "no task claimed twice")
            #expect(claimed.allSatisfy { $0.count <= 8 })
            // Nothing is due while claimed; all of it again once the claim lapses unsettled.
            #expect(try await store.claimOptOuts(at: now + .seconds(119), limit: 100, until: now + .seconds(200)).isEmpty)
            #expect(try await store.claimOptOuts(at: now + .seconds(120), limit: 100, until: now + .seconds(200)).count == 20)
            #expect(try await store.pendingOptOuts() == 20)
        }
    }

    @Test("Retention keeps an idle EC while an opt-out of its is pending, then deletes it with its outbox rows", arguments: StoreKind.available)
    func retention(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let store = opened.store
            _ = try await store.createRoot(for: edgeCookie(1), at: t0)
            try await Self.store(store, 1, ["a.example"])
            _ = try await store.withdraw(ecHash: ecHash(1), at: t0, notifying: ["a.example"])
            #expect(try await store.pendingOptOuts() == 1)
            let kept = try await store.forget(uidsSyncedBefore: t0, ecsSeenBefore: t0 + .seconds(1), limit: 10)
            #expect(kept.ecs == 0)
            #expect(try await store.record(ecHash: ecHash(1)) != nil)
            let task = try #require(try await Self.claim(store, at: t0 + .seconds(1)).first)
            try await store.settleOptOut(task, .acknowledged, at: t0 + .seconds(1))
            let deleted = try await store.forget(uidsSyncedBefore: t0, ecsSeenBefore: t0 + .seconds(1), limit: 10)
            #expect(deleted.ecs == 1)
            #expect(try await store.record(ecHash: ecHash(1)) == nil)
            // The settled row went with it: the same EC created again and withdrawn tells again.
            _ = try await store.createRoot(for: edgeCookie(1), at: t0 + .seconds(2))
            try await Self.store(store, 1, ["a.example"], at: t0 + .seconds(2))
            _ = try await store.withdraw(ecHash: ecHash(1), at: t0 + .seconds(3), notifying: ["a.example"])
            #expect(try await store.pendingOptOuts() == 1)
        }
    }

    @Test("An older consent snapshot never replaces a newer one", arguments: StoreKind.available)
    func olderSnapshot(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let store = opened.store
            _ = try await store.createRoot(for: edgeCookie(1), at: t0)
            let newer = ConsentSnapshot(ConsentStrings(usPrivacy: "1NNN"), seenAt: t0 + .seconds(20))
            let older = ConsentSnapshot(ConsentStrings(usPrivacy: "1YNN"), seenAt: t0 + .seconds(10))
            try await store.markSeen(ecHash: ecHash(1), at: t0 + .seconds(20), consent: newer)
            try await store.markSeen(ecHash: ecHash(1), at: t0 + .seconds(10), consent: older)
            #expect(try await store.record(ecHash: ecHash(1))?.consentDigest == newer.digest)
            let query = BackfillQuery(sourceDomain: "a.example", ttl: .seconds(1), now: t0 + .seconds(30))
            #expect(try await store.backfillCandidates(query, after: nil, limit: 1).first?.consent == newer)
        }
    }
}
