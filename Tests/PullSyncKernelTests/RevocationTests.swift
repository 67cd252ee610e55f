import PullSyncKernel
import PullSyncStorage
import PullSyncTesting
import Testing

/// Issue 19, per-partner revocation: when a request's consent refuses a partner that has a UID
/// for the EC, the UID is forgotten off the page path, and a call to it in flight stores nothing.
@Suite("Per-partner revocation")
struct RevocationTests {
    /// TCF v2 specification example: purposes 1-3, vendors 2, 6 and 8 (not 3).
    static let tcf = ConsentStrings(tcf: ConsentRuleTests.tcfVendors268)

    static func vendors() -> [Partner] {
        [
            TestPartners.partner("v2", consent: PartnerConsentRequirements(tcfVendorID: 2)),
            TestPartners.partner("v3", consent: PartnerConsentRequirements(tcfVendorID: 3)),
            TestPartners.partner("skip7", consent: PartnerConsentRequirements(gppSkipSections: [7])),
        ]
    }

    /// EC 1 with a UID of each of ``vendors()``, learned a minute ago.
    static func seedUIDs(_ harness: Harness) async throws {
        let now = harness.clock.now()
        try await harness.seed(
            1,
            uids: [
                "v2": uid("u2", age: .seconds(60), now: now), "v3": uid("u3", age: .seconds(60), now: now),
                "skip7": uid("u7", age: .seconds(60), now: now),
            ]
        )
    }

    @Test("A TC string without the vendor removes its UID; the other partners' UIDs stay; explain only lists it")
    func tcfRefusal() async throws {
        let harness = try Harness(partners: Self.vendors())
        try await Self.seedUIDs(harness)
        // The GPP section 7 string refuses nobody here but skip7; with it applying, skip7 is revoked.
        let explained = await harness.kernel.explain(request(1, consentStrings: Self.tcf))
        #expect(explained.revoked == ["v3", "skip7"], "skip7 has no vendor ID where TCF applies")
        #expect(try await harness.storedUID(1, "v3") != nil, "explain changes nothing")

        let report = await harness.kernel.process(request(1, consentStrings: Self.tcf))

        #expect(report.plan.revoked == ["v3", "skip7"])
        #expect(try await harness.storedUID(1, "v2")?.uid == "u2")
        #expect(try await harness.storedUID(1, "v3") == nil)
        #expect(try await harness.storedUID(1, "skip7") == nil)
        #expect(harness.counter("pullsync_revocations_total", [("partner", "v3")]) == 1)
        #expect(harness.counter("pullsync_revocations_total", [("partner", "v2")]) == 0)
        #expect(harness.calls("v3") == 0)

        // Nothing left to revoke: the next page view with the same string writes nothing.
        harness.clock.advance(by: .seconds(1))
        let again = await harness.kernel.explain(request(1, consentStrings: Self.tcf))
        #expect(again.revoked.isEmpty)
    }

    @Test("A GPP skip section and the host's per-partner policy revoke too", arguments: [true, false])
    func otherRefusals(gpp: Bool) async throws {
        let harness = try Harness(partners: Self.vendors())
        try await Self.seedUIDs(harness)
        let organic =
            gpp
            // iabgpp-es UsNat.test: section 7 applies, no opt-out in it.
            ? request(1, consentStrings: ConsentStrings(gpp: "DBABzw~1YNN~BVQqAAAACg"))
            : request(1, consent: ConsentDecision(granted: true, partnerPolicy: DenyVendor(vendorID: 2)))
        let report = await harness.kernel.process(organic)
        #expect(report.plan.revoked == (gpp ? ["skip7"] : ["v2"]))
        #expect(try await harness.storedUID(1, gpp ? "skip7" : "v2") == nil)
        #expect(try await harness.storedUID(1, "v3")?.uid == "u3")
    }

    @Test(
        "A call in flight when the partner is revoked answers with a UID afterwards, and nothing is stored",
        arguments: [true, false]  // false: the control, where the answer is stored
    )
    func inFlightCallStoresNothing(revoke: Bool) async throws {
        let gate = TestGate()
        let started = Box(0)
        let harness = try Harness(partners: Self.vendors()) { scripted in
            HookTransport(base: scripted) { _ in
                started.update { $0 += 1 }
                await gate.wait()
            }
        }
        for id in ["v2", "v3", "skip7"] { harness.transport.script(TestPartners.host(id), .uid("uid-\(id)")) }
        try await harness.seed(1)
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        let running = Task { await dispatcher.run() }

        // No signals: every partner is called; the calls wait for the gate.
        #expect(dispatcher.submit(request(1)) == .enqueued)
        #expect(await eventually { started.value == 3 })
        if revoke {
            // The next page carries a TC string refusing v3 and skip7, whose calls are in flight.
            harness.clock.advance(by: .seconds(1))
            #expect(dispatcher.submit(request(1, consentStrings: Self.tcf)) == .enqueued)
            #expect(await eventually { dispatcher.statistics.processed == 1 })
        }
        gate.open()
        #expect(await eventually { dispatcher.statistics.processed == (revoke ? 2 : 1) })

        #expect(try await harness.storedUID(1, "v2")?.uid == "uid-v2")
        #expect(try await harness.storedUID(1, "v3")?.uid == (revoke ? nil : "uid-v3"))
        #expect(try await harness.storedUID(1, "skip7")?.uid == (revoke ? nil : "uid-skip7"))
        #expect(harness.counter("pullsync_writes_total", [("partner", "v3"), ("result", "revoked")]) == (revoke ? 1 : 0))

        // Consent given again later: a new call stores as usual.
        if revoke {
            harness.clock.advance(by: .seconds(2 * 3600))
            let report = await harness.kernel.process(request(1))
            #expect(report.results.first { $0.partnerID == "v3" }?.write == .stored)
            #expect(try await harness.storedUID(1, "v3")?.uid == "uid-v3")
        }
        dispatcher.beginShutdown()
        await running.value
    }

    @Test("A revocation ends the EC's memo entry: no EID offers the revoked UIDs from memory")
    func revocationEndsTheMemo() async throws {
        let harness = try Harness(partners: Self.vendors())
        try await Self.seedUIDs(harness)
        let ec1 = EdgeCookie(unchecked: ec(1))
        _ = try await harness.kernel.eids(for: ec1)  // EIDs are read on this node: the memo keeps UIDs
        _ = await harness.kernel.process(request(1))  // every UID fresh: remembered, with its UIDs
        #expect(harness.kernel.gate(request(1)) == .skip(.freshMemo))
        #expect(try await harness.kernel.eids(for: ec1)?.count == 3)

        harness.clock.advance(by: .seconds(1))
        _ = await harness.kernel.process(request(1, consentStrings: Self.tcf))  // revokes v3 and skip7

        #expect(harness.kernel.gate(request(1)) == .pass(ec1), "the entry under the old signals is gone")
        #expect(try await harness.kernel.eids(for: ec1)?.map(\.source) == ["v2.example"])
    }
}
