import PullSyncKernel
import PullSyncStorage
import PullSyncTesting
import Testing

/// Spec "Behaviour" 8: the UID is upserted under the partner's `source_domain` with the time
/// it was learned, never clobbering a newer UID and never writing after a withdrawal.
@Suite("UID write")
struct WriteTests {
    /// A harness whose partner `a` answers `uid-a`, running `duringCall` while the call is in flight.
    static func harness(
        partners list: [Partner] = partners(["a"]),
        duringCall: @escaping @Sendable (Harness) async throws -> Void
    ) throws -> Harness {
        let handle = Box<Harness?>(nil)
        let harness = try Harness(partners: list) { base in
            HookTransport(base: base) { _ in
                guard let harness = handle.value else { return }
                try? await duringCall(harness)
            }
        }
        handle.value = harness
        harness.transport.script(TestPartners.host("a"), .uid("uid-a"))
        return harness
    }

    @Test("A UID is stored under the partner's source_domain with the clock's time when it was learned")
    func storedWithLearnedTime() async throws {
        let harness = try Self.harness { harness in harness.clock.advance(by: .seconds(7)) }
        let planned = harness.clock.now()
        try await harness.seed(1)

        let report = await harness.kernel.process(request(1))

        #expect(report.results.map(\.write) == [.stored])
        let record = try #require(try await harness.record(1))
        #expect(record.partners == ["a.example": PartnerUID(uid: "uid-a", syncedAt: planned + .seconds(7))])
        #expect(harness.counter("pullsync_writes_total", [("partner", "a"), ("result", "stored")]) == 1)
    }

    @Test("A stale UID is replaced")
    func staleReplaced() async throws {
        let harness = try Self.harness { _ in }
        let now = harness.clock.now()
        try await harness.seed(1, uids: ["a": uid("old", age: .seconds(100_000), now: now)])

        let report = await harness.kernel.process(request(1))

        #expect(report.results.map(\.write) == [.stored])
        #expect(try await harness.storedUID(1, "a") == PartnerUID(uid: "uid-a", syncedAt: now))
    }

    @Test("A second writer storing a UID between plan and write wins: conflict, the newer UID stays")
    func conflictKeepsNewer() async throws {
        let newer = PartnerUID(uid: "from-redirect-sync", syncedAt: Timestamp(secondsSinceEpoch: 1_767_225_601))
        let harness = try Self.harness { harness in
            harness.graph.set(newer, sourceDomain: "a.example", ecHash: hash(1))
        }
        try await harness.seed(1)

        let report = await harness.kernel.process(request(1))

        #expect(report.results.map(\.outcome) == [.uid("uid-a")])
        #expect(report.results.map(\.write) == [.conflict])
        #expect(try await harness.storedUID(1, "a") == newer)
        #expect(harness.counter("pullsync_writes_total", [("partner", "a"), ("result", "conflict")]) == 1)
    }

    @Test("A second writer refreshing a stale UID between plan and write wins too")
    func conflictOverStale() async throws {
        let newer = PartnerUID(uid: "refreshed", syncedAt: Timestamp(secondsSinceEpoch: 1_767_225_601))
        let harness = try Self.harness { harness in
            harness.graph.set(newer, sourceDomain: "a.example", ecHash: hash(1))
        }
        try await harness.seed(1, uids: ["a": uid("stale", age: .seconds(100_000), now: harness.clock.now())])

        let report = await harness.kernel.process(request(1))

        #expect(report.results.map(\.write) == [.conflict])
        #expect(try await harness.storedUID(1, "a") == newer)
    }

    @Test("Consent withdrawn between plan and write: withdrawn, nothing stored")
    func withdrawnMeanwhile() async throws {
        let harness = try Self.harness { harness in
            _ = try await harness.graph.withdraw(ecHash: hash(1), at: harness.clock.now())
        }
        try await harness.seed(1)

        let report = await harness.kernel.process(request(1))

        #expect(report.results.map(\.write) == [.withdrawn])
        let record = try #require(try await harness.record(1))
        #expect(record.withdrawn)
        #expect(record.partners.isEmpty)
        #expect(harness.counter("pullsync_writes_total", [("partner", "a"), ("result", "withdrawn")]) == 1)
    }

    @Test("Each partner's write is conditional on its own entry only")
    func independentEntries() async throws {
        let harness = try Self.harness(partners: partners(["a", "b"])) { harness in
            harness.graph.set(
                PartnerUID(uid: "other-writer", syncedAt: harness.clock.now()),
                sourceDomain: "a.example",
                ecHash: hash(1)
            )
        }
        harness.transport.script(TestPartners.host("b"), .uid("uid-b"))
        try await harness.seed(1)

        let report = await harness.kernel.process(request(1))

        let writes = Dictionary(uniqueKeysWithValues: report.results.map { ($0.partnerID, $0.write) })
        #expect(writes == ["a": .conflict, "b": .stored])
        #expect(try await harness.storedUID(1, "b")?.uid == "uid-b")
        #expect(try await harness.storedUID(1, "a")?.uid == "other-writer")
    }

    @Test("A partner-given expiry is stored with the UID and overrides the TTL")
    func expiryStored() async throws {
        let expiry = Timestamp(secondsSinceEpoch: 1_767_225_600 + 600)
        let partner = Partner(
            id: "compiled",
            sourceDomain: "compiled.example",
            policy: PartnerPolicy(
                allowedHosts: AllowedHosts(["ids.compiled.example"])
            ),
            adapter: FixedOutcomeAdapter(host: "ids.compiled.example", outcome: .uid("c-1", expiresAt: expiry))
        )
        let harness = try Harness(partners: [partner])
        try await harness.seed(1)

        _ = await harness.kernel.process(request(1))
        let stored = try await harness.record(1)?.partners["compiled.example"]
        harness.clock.advance(by: .seconds(599))
        let before = await harness.kernel.process(request(1))
        // The memo the call left holds until the partner's expiry, not the TTL's end.
        #expect(before.plan.requestSkip == .freshMemo)
        let explained = await harness.kernel.explain(request(1))
        harness.clock.advance(by: .seconds(1))
        let after = await harness.kernel.process(request(1))

        #expect(
            stored == PartnerUID(uid: "c-1", syncedAt: Timestamp(secondsSinceEpoch: 1_767_225_600), expiresAt: expiry)
        )
        #expect(explained.decision(for: "compiled") == .skip(.fresh))
        #expect(after.plan.decision(for: "compiled") == .dispatch)
    }

    @Test("InMemoryIdentityGraph writes are conditional and refuse unknown or withdrawn ECs")
    func inMemoryGraph() async throws {
        let graph = InMemoryIdentityGraph()
        let t = Timestamp(secondsSinceEpoch: 10)
        let first = PartnerUID(uid: "1", syncedAt: t)
        let second = PartnerUID(uid: "2", syncedAt: t + .seconds(1))

        #expect(
            try await graph.write([UIDWrite(sourceDomain: "a.example", value: first, expected: nil)], ecHash: hash(1))
                == [.unknownEC]
        )
        _ = try await graph.createRoot(for: EdgeCookie(unchecked: ec(1)), at: t)
        let results = try await graph.write(
            [
                UIDWrite(sourceDomain: "a.example", value: first, expected: nil),
                UIDWrite(sourceDomain: "b.example", value: first, expected: second),
            ],
            ecHash: hash(1)
        )
        #expect(results == [.stored, .conflict])
        #expect(
            try await graph.write([UIDWrite(sourceDomain: "a.example", value: second, expected: nil)], ecHash: hash(1))
                == [.conflict]
        )
        #expect(
            try await graph.write(
                [UIDWrite(sourceDomain: "a.example", value: second, expected: first)],
                ecHash: hash(1)
            ) == [.stored]
        )
        #expect(try await graph.record(ecHash: hash(1))?.partners == ["a.example": second])
        #expect(try await graph.withdraw(ecHash: hash(1), at: t))
        #expect(
            try await graph.write([UIDWrite(sourceDomain: "a.example", value: first, expected: nil)], ecHash: hash(1))
                == [.withdrawn]
        )
        #expect(try await graph.withdraw(ecHash: hash(2), at: t) == false)
    }
}
