import PullSyncKernel
import PullSyncTesting
import Testing

/// Spec "Behaviour" 4: an optional per-partner budget (calls per second across all traffic).
@Suite("Budget")
struct BudgetTests {
    @Test("budgetPerSecond 2 allows at most two calls per second of clock, then refills")
    func twoPerSecond() async throws {
        let harness = try Harness(partners: [
            TestPartners.partner("a", budgetPerSecond: 2), TestPartners.partner("free"),
        ])
        var decisions: [Decision?] = []
        for n in 1...5 {
            decisions.append(await harness.kernel.process(request(n, issued: true)).plan.decision(for: "a"))
        }
        #expect(decisions == [.dispatch, .dispatch, .skip(.budget), .skip(.budget), .skip(.budget)])
        #expect(harness.calls("free") == 5)

        // Half a second later planning has a token again, but two calls went out in the last
        // second: the send is refused (a budget decision too). The budget holds in any second.
        harness.clock.advance(by: .milliseconds(500))
        let early = await harness.kernel.process(request(6, issued: true))
        #expect(early.plan.decision(for: "a") == .dispatch)
        #expect(!early.results.contains { $0.partnerID == "a" })

        harness.clock.advance(by: .seconds(10))
        decisions = []
        for n in 8...10 {
            decisions.append(await harness.kernel.process(request(n, issued: true)).plan.decision(for: "a"))
        }
        #expect(decisions == [.dispatch, .dispatch, .skip(.budget)])
        #expect(harness.calls("a") == 4)
        #expect(harness.decisions("a", "budget") == 5)
    }

    @Test("Concurrent traffic at one instant can't exceed the budget")
    func concurrentTraffic() async throws {
        let harness = try Harness(partners: [TestPartners.partner("a", budgetPerSecond: 3)])
        let kernel = harness.kernel

        let dispatched = await withTaskGroup(of: Int.self) { group in
            for n in 0..<50 {
                group.addTask { await kernel.process(request(n, issued: true)).plan.calls.count }
            }
            return await group.reduce(0, +)
        }

        #expect(dispatched == 3)
        #expect(harness.calls("a") == 3)
    }

    @Test("A call refused later in planning (rate limit) gives its budget token back")
    func refusedCallRefunds() async throws {
        let harness = try Harness(
            partners: [
                TestPartners.partner(
                    "a",
                    rateLimit: RateLimitPolicy(calls: 1, window: .seconds(3600)),
                    budgetPerSecond: 2
                )
            ]
        )

        let first = await harness.kernel.process(request(1, issued: true))
        let limited = await harness.kernel.process(request(1))
        let other = await harness.kernel.process(request(2, issued: true))
        let exhausted = await harness.kernel.process(request(3, issued: true))

        #expect(first.plan.decision(for: "a") == .dispatch)
        #expect(limited.plan.decision(for: "a") == .skip(.rateLimited))
        #expect(other.plan.decision(for: "a") == .dispatch)
        #expect(exhausted.plan.decision(for: "a") == .skip(.budget))
    }
}
