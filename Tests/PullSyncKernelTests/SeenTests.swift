import PullSyncKernel
import PullSyncStorage
import PullSyncTesting
import Testing

/// Issue 19, retention: a decision records that its EC was seen, at most once a day, so idle ECs
/// can be told from active ones without a write per page view.
@Suite("EC last seen")
struct SeenTests {
    @Test("Recorded by a decision once a day at most; never for a withdrawn EC")
    func onceADay() async throws {
        let harness = try Harness(partners: partners(["a"]))
        let start = harness.clock.now()
        try await harness.seed(1, uids: ["a": uid("u", age: .zero, now: start)])
        func seenWrites() -> Int64 { harness.counter("pullsync_store_round_trips_total", [("operation", "seen")]) }

        _ = await harness.kernel.process(request(1))
        #expect(seenWrites() == 1, "the EC had no consent snapshot: it gets one")
        _ = await harness.kernel.process(request(1))
        #expect(seenWrites() == 1, "seen when the snapshot was kept, moments ago")

        harness.clock.advance(by: .seconds(2 * 86_400))
        _ = await harness.kernel.process(request(1))
        #expect(seenWrites() == 2)
        #expect(try await harness.record(1)?.seenAt == harness.clock.now())

        // Later the same day: nothing written, however many page views.
        for _ in 0..<3 {
            harness.clock.advance(by: .seconds(3600))
            _ = await harness.kernel.process(request(1))
        }
        #expect(seenWrites() == 2)

        #expect(try await harness.kernel.withdraw(EdgeCookie(unchecked: ec(1))))
        harness.clock.advance(by: .seconds(2 * 86_400))
        _ = await harness.kernel.process(request(1))
        #expect(seenWrites() == 2)
    }
}

/// Issue 19: the consent signals last seen with each EC are kept, for backfill, with a write
/// only when they change.
@Suite("Consent snapshots")
struct ConsentSnapshotTests {
    static let tcf = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA"

    @Test("Kept with a new EC's root entry; replaced only when a request brings other signals")
    func keptAndReplaced() async throws {
        let graph = InMemoryIdentityGraph()
        let harness = try Harness(partners: partners(["a"]), graph: graph)
        func snapshotWrites() -> Int64 { harness.counter("pullsync_store_round_trips_total", [("operation", "seen")]) }
        func kept() async throws -> ConsentSnapshot? {
            let query = BackfillQuery(sourceDomain: "nobody.example", ttl: .seconds(1), now: harness.clock.now())
            return try await graph.backfillCandidates(query, after: nil, limit: 1).first?.consent
        }
        let first = ConsentStrings(tcf: Self.tcf, gpp: "DBABTA~1YNN", gppSectionIDs: [2, 6], usPrivacy: "1YNN")
        let created = harness.clock.now()
        _ = await harness.kernel.process(request(1, issued: true, consentStrings: first))
        #expect(snapshotWrites() == 0, "kept by the statement that created the root entry")
        #expect(try await kept() == ConsentSnapshot(first, seenAt: created))
        #expect(try await kept()?.strings == first)

        // The same signals, page after page: no write.
        for _ in 0..<5 {
            harness.clock.advance(by: .seconds(60))
            _ = await harness.kernel.process(request(1, consentStrings: first))
        }
        #expect(snapshotWrites() == 0)

        // Other signals: one write, and the snapshot is theirs.
        harness.clock.advance(by: .seconds(60))
        let changed = harness.clock.now()
        let second = ConsentStrings(usPrivacy: "1NNN")
        _ = await harness.kernel.process(request(1, consentStrings: second))
        #expect(snapshotWrites() == 1)
        #expect(try await kept() == ConsentSnapshot(second, seenAt: changed))
        #expect(try await graph.record(ecHash: hash(1))?.consentDigest == ConsentSnapshot.digest(of: second))

        // Signals that refuse everyone don't replace it (a malformed TC string).
        _ = await harness.kernel.process(request(1, consentStrings: ConsentStrings(tcf: "not-a-tc-string")))
        #expect(snapshotWrites() == 1)
        #expect(try await kept()?.strings == second)
    }

    @Test("Signals over the size bound are recorded as seen but not kept")
    func oversized() {
        let large = ConsentStrings(gpp: String(repeating: "A", count: ConsentSnapshot.maxBytes + 1))
        let snapshot = ConsentSnapshot(large, seenAt: Timestamp(nanosecondsSinceEpoch: 0))
        #expect(snapshot.strings == nil)
        #expect(snapshot.digest == ConsentSnapshot.digest(of: large))
        #expect(ConsentSnapshot(ConsentStrings(usPrivacy: "1YNN"), seenAt: snapshot.seenAt).strings?.usPrivacy == "1YNN")
    }

    @Test(
        "Digests tell apart signals that differ only in where a character sits",
        arguments: [
            (ConsentStrings(tcf: "AB", gpp: "C"), ConsentStrings(tcf: "A", gpp: "BC")),
            (ConsentStrings(tcf: ""), ConsentStrings()),
            (ConsentStrings(gppSectionIDs: [2, 7]), ConsentStrings(gppSectionIDs: [7, 2])),
            (ConsentStrings(usPrivacy: "1YNN"), ConsentStrings(tcf: "1YNN")),
        ]
    )
    func digestsDiffer(a: ConsentStrings, b: ConsentStrings) {
        #expect(ConsentSnapshot.digest(of: a) != ConsentSnapshot.digest(of: b))
        #expect(ConsentSnapshot.digest(of: a) == ConsentSnapshot.digest(of: a))
        var gpc = a
        gpc.globalPrivacyControl = true
        #expect(ConsentSnapshot.digest(of: gpc) == ConsentSnapshot.digest(of: a), "GPC is not part of a snapshot")
    }

    @Test("A digest is the same in every process: FNV-1a over the documented layout of the signals")
    func digestIsStable() {
        #expect(ConsentSnapshot.digest(of: ConsentStrings()) == ConsentSnapshot.digest(of: ConsentStrings()))
        #expect(ConsentSnapshot.digest(of: ConsentStrings(usPrivacy: "1YNN")) == Self.knownDigest)
    }

    /// The layout written out independently (absent: -1; present: length, then bytes; 8-byte
    /// little-endian integers) and hashed by a second FNV-1a, so that a change of the function,
    /// which would make every node rewrite every stored snapshot once, is noticed.
    static let knownDigest = fnv1a(
        minusOne(8) + minusOne(8) + le(4) + Array("1YNN".utf8) + le(0)
    )

    static func le(_ value: Int) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }
    static func minusOne(_ count: Int) -> [UInt8] { Array(repeating: 0xff, count: count) }
    static func fnv1a(_ bytes: [UInt8]) -> Int64 {
        var hash: UInt64 = 14_695_981_039_346_656_037
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
        return Int64(bitPattern: hash)
    }
}

/// Issue 17: what a decision costs the store, as `pullsync_store_round_trips_total` counts it.
@Suite("Store round trips of a decision")
struct DecisionRoundTripTests {
    @Test("An EC issued on this request costs one round trip for its record (created, not looked up first)")
    func issuedEC() async throws {
        let graph = LookupCountingGraph(base: InMemoryIdentityGraph())
        let harness = try Harness(partners: partners(["a"]), graph: graph)
        harness.transport.script(TestPartners.host("a"), .uid("u"))
        let report = await harness.kernel.process(request(1, issued: true))
        #expect(report.results.map(\.write) == [.stored])
        #expect(graph.lookups == 0)
        func trips(_ operation: String) -> Int64 {
            harness.counter("pullsync_store_round_trips_total", [("operation", operation)])
        }
        #expect(trips("create_root") == 1)
        #expect(trips("lookup") == 0)
        #expect(trips("admit") == 1)
        #expect(trips("write") == 1)
        // A returning browser's EC is looked up.
        harness.clock.advance(by: .seconds(2 * 86_400))
        _ = await harness.kernel.process(request(1))
        #expect(graph.lookups == 1)
        #expect(trips("lookup") == 1)
    }
}
