import PullSyncKernel
import PullSyncTesting
import Testing

/// Spec "Behaviour" 10: `explain` prints a decision for every partner of one request, and
/// changes nothing: no rate-limit count, no root entry, no budget, no probe, no metric.
@Suite("Explain")
struct ExplainTests {
    @Test("explain decides every partner, including disabled ones, and changes nothing")
    func decidesEveryPartnerChangingNothing() async throws {
        let harness = try Harness(
            partners: [
                TestPartners.partner("budgeted", budgetPerSecond: 1),
                TestPartners.partner("limited", rateLimit: RateLimitPolicy(calls: 1)),
                TestPartners.partner("vendor", consent: PartnerConsentRequirements(tcfVendorID: 9)),
                TestPartners.partner("off", pullEnabled: false),
            ]
        )
        let consent = ConsentDecision(granted: true, partnerPolicy: DenyVendor(vendorID: 9))

        for _ in 0..<3 {
            let plan = await harness.kernel.explain(request(1, issued: true, consent: consent))
            #expect(plan.decisions.count == 4)
            #expect(plan.decision(for: "budgeted") == .dispatch)
            #expect(plan.decision(for: "limited") == .dispatch)
            #expect(plan.decision(for: "vendor") == .skip(.consent))
            #expect(plan.decision(for: "off") == .skip(.disabled))
            #expect(Set(plan.calls.map(\.partnerID)) == ["budgeted", "limited"])
        }

        // Nothing was created, counted, sent or measured.
        #expect(harness.graph.allRecords.isEmpty)
        #expect(try await harness.rateCount("budgeted", 1) == 0)
        #expect(try await harness.rateCount("limited", 1) == 0)
        #expect(harness.transport.records.isEmpty)
        #expect(harness.metrics.counters.allSatisfy { $0.totalValue == 0 })

        // The budget token and the single rate-limit slot are still there for a real request.
        let real = await harness.kernel.process(request(1, issued: true, consent: consent))
        #expect(real.plan.decision(for: "budgeted") == .dispatch)
        #expect(real.plan.decision(for: "limited") == .dispatch)
        #expect(try await harness.rateCount("limited", 1) == 1)

        // explain sees what the real request used up.
        let after = await harness.kernel.explain(request(1))
        #expect(after.decision(for: "budgeted") == .skip(.budget))
        #expect(after.decision(for: "limited") == .skip(.rateLimited))
        #expect(try await harness.rateCount("limited", 1) == 1)
    }

    @Test("explain reports fresh, deferred and unknown-EC decisions")
    func otherReasons() async throws {
        let harness = try Harness(
            partners: partners(["a", "b", "c", "d"]),
            configuration: PullSyncConfiguration(maxCallsPerRequest: 1)
        )
        try await harness.seed(1, uids: ["a": uid("known", age: .seconds(5), now: harness.clock.now())])

        let plan = await harness.kernel.explain(request(1))
        let unknown = await harness.kernel.explain(request(2))

        #expect(plan.decision(for: "a") == .skip(.fresh))
        #expect(plan.decisions.filter { $0.decision == .dispatch }.count == 1)
        #expect(plan.decisions.filter { $0.decision == .skip(.deferred) }.count == 2)
        #expect(unknown.decisions.map(\.decision) == Array(repeating: .skip(.unknownEC), count: 4))
        #expect(harness.transport.records.isEmpty)
    }

    @Test("explain doesn't take a half-open circuit's single probe")
    func doesNotTakeProbe() async throws {
        let harness = try Harness(partners: partners(["a"]), fallback: .status(503))
        for n in 1...5 { _ = await harness.kernel.process(request(n, issued: true)) }
        #expect(await harness.kernel.explain(request(1)).decision(for: "a") == .skip(.circuitOpen))
        harness.clock.advance(by: .seconds(30))

        #expect(await harness.kernel.explain(request(1)).decision(for: "a") == .dispatch)
        #expect(await harness.kernel.explain(request(1)).decision(for: "a") == .dispatch)
        #expect(await harness.kernel.process(request(1)).plan.decision(for: "a") == .dispatch)
        #expect(harness.calls("a") == 6)
    }
}
