import MetricsTestKit
import PullSync
import PullSyncPostgres
import PullSyncSQLite
import PullSyncStorage
import Testing

/// Issue 19, retention: UIDs past the maximum age and ECs not seen for the idle period are
/// deleted, in bounded batches, on every store; fresh ones are kept.
@Suite("Retention")
struct RetentionTests {
    static let day = Duration.seconds(86_400)

    @Test("Expired UIDs, revocation marks and idle ECs go; fresh ones stay", arguments: StoreKind.available)
    func expiredAndIdle(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            let store = opened.store
            // EC 1: created at t0, seen again on day 100. EC 2: never seen after t0. EC 3: new on day 300.
            _ = try await store.createRoot(for: edgeCookie(1), at: t0)
            _ = try await store.createRoot(for: edgeCookie(2), at: t0)
            _ = try await store.createRoot(for: edgeCookie(3), at: t0 + Self.day * 300)
            try await store.markSeen(ecHash: ecHash(1), at: t0 + Self.day * 100)
            try await store.markSeen(ecHash: ecHash(1), at: t0 + Self.day * 50)  // never backwards
            try await store.markSeen(ecHash: ecHash(9), at: t0)  // unknown: nothing happens
            #expect(try await store.record(ecHash: ecHash(1))?.seenAt == t0 + Self.day * 100)
            #expect(try await store.record(ecHash: ecHash(9)) == nil)
            // EC 1: a UID from t0 (expired by day 400), one from day 320 (kept), a revocation on day 1.
            _ = try await store.write(
                [
                    UIDWrite(sourceDomain: "old.example", value: uid("u-old", at: t0), expected: nil),
                    UIDWrite(sourceDomain: "new.example", value: uid("u-new", at: t0 + Self.day * 320), expected: nil),
                ],
                ecHash: ecHash(1)
            )
            _ = try await store.revoke(["gone.example"], ecHash: ecHash(1), at: t0 + Self.day)
            _ = try await store.write(
                [UIDWrite(sourceDomain: "new.example", value: uid("u-3", at: t0 + Self.day * 350), expected: nil)],
                ecHash: ecHash(3)
            )

            // Day 400, UIDs kept 90 days, ECs 395 days: cut-offs day 310 and day 5.
            let now = t0 + Self.day * 400
            let batch = try await store.forget(
                uidsSyncedBefore: now - Self.day * 90,
                ecsSeenBefore: now - Self.day * 395,
                limit: 100
            )
            #expect(batch == RetentionBatch(uids: 2, ecs: 1), "u-old and the revocation mark; EC 2")
            #expect(try await store.record(ecHash: ecHash(2)) == nil)
            #expect(try await store.record(ecHash: ecHash(1))?.partners.keys.sorted() == ["new.example"])
            #expect(try await store.record(ecHash: ecHash(3))?.partners["new.example"]?.uid == "u-3")
            // The revocation mark is gone too: a write planned before it now stores.
            let late = UIDWrite(sourceDomain: "gone.example", value: uid("g", at: now), expected: nil, plannedAt: t0)
            #expect(try await store.write([late], ecHash: ecHash(1)) == [.stored])
            // Nothing left to delete.
            let again = try await store.forget(
                uidsSyncedBefore: now - Self.day * 90,
                ecsSeenBefore: now - Self.day * 395,
                limit: 100
            )
            #expect(again == RetentionBatch(uids: 0, ecs: 0))
        }
    }

    @Test("A sweep goes in batches of the configured size until one comes back short", arguments: StoreKind.available)
    func batches(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            for n in 1...25 { _ = try await opened.store.createRoot(for: edgeCookie(n), at: t0) }
            _ = try await opened.store.createRoot(for: edgeCookie(26), at: t0 + Self.day * 400)
            let metrics = TestMetrics()
            let service = RetentionService(
                store: opened.store,
                retention: Retention(batchSize: 10),
                maxUIDAge: Self.day * 90,
                metricsFactory: metrics,
                logger: .init(label: "retention-test")
            )
            let swept = try await service.sweep(at: t0 + Self.day * 400)
            #expect(swept == RetentionBatch(uids: 0, ecs: 25))
            #expect(try await opened.store.record(ecHash: ecHash(26)) != nil, "seen recently: kept")
            #expect(try metrics.expectCounter("pullsync_retention_deleted_total", [("kind", "ec")]).totalValue == 25)
        }
    }

    @Test(
        "100,000 idle ECs are swept in bounded batches: one statement per 1,000 rows",
        arguments: StoreKind.persistent
    )
    func largeSweep(kind: StoreKind) async throws {
        try await withStore(kind) { opened in
            // Inserted outside the store, in one statement each: 100,000 ECs seen in 1970 (hashes
            // starting with f, apart from the test ECs'), each with a UID; and one EC seen now.
            switch kind {
            case .sqlite:
                let path = String(opened.url.dropFirst("sqlite:".count))
                _ = try await sqlite3(
                    path,
                    """
                    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
                    INSERT INTO pullsync_ecs (ec_hash, ec_id, created_at, seen_at)
                    SELECT printf('f%063d', i), printf('f%063d', i) || '.AbC123', 0, 0 FROM n
                    """
                )
                _ = try await sqlite3(
                    path,
                    "INSERT INTO pullsync_uids (ec_hash, source_domain, uid, synced_at) SELECT ec_hash, 'a.example', 'u', 0 FROM pullsync_ecs"
                )
            default:
                _ = try await postgres(
                    opened.url,
                    [
                        """
                        INSERT INTO pullsync_ecs (ec_hash, ec_id, created_at, seen_at)
                        SELECT 'f' || lpad(i::text, 63, '0'), 'f' || lpad(i::text, 63, '0') || '.AbC123', 0, 0
                        FROM generate_series(1, 100000) AS i
                        """,
                        "INSERT INTO pullsync_uids (ec_hash, source_domain, uid, synced_at) SELECT ec_hash, 'a.example', 'u', 0 FROM pullsync_ecs",
                    ]
                )
            }
            _ = try await opened.store.createRoot(for: edgeCookie(1), at: t0)
            let service = RetentionService(
                store: opened.store,
                retention: Retention(batchSize: 1000),
                maxUIDAge: Self.day * 90,
                logger: .init(label: "retention-test")
            )
            let before = Self.statements(opened.store)
            let swept = try await service.sweep(at: t0 + .seconds(60))
            // 100 full batches and a short one; each statement deletes at most 1,000 rows, so
            // memory stays bounded whatever the store holds.
            let perBatch = kind == .sqlite ? 1 : 2
            #expect(Self.statements(opened.store) - before == 101 * perBatch)
            #expect(swept.ecs == 100_000)
            #expect(try await opened.store.record(ecHash: ecHash(1)) != nil)
        }
    }

    /// Round trips the store has made (SQLite: transactions; PostgreSQL: statements).
    static func statements(_ store: any PullSyncStore) -> Int {
        if let sqlite = store as? SQLiteStore { return sqlite.transactionCount }
        if let postgres = store as? PostgresStore { return postgres.roundTrips }
        return 0
    }
}
