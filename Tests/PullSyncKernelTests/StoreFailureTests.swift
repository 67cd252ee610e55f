import Logging
import PullSyncKernel
import PullSyncStorage
import PullSyncTesting
import Testing

/// When the identity graph or the rate-limit store fails, pull sync skips
/// (`store_unavailable`) rather than guessing.
@Suite("Store failures")
struct StoreFailureTests {
    @Test("An identity graph that throws on lookup: zero calls, reason store_unavailable")
    func graphLookupFails() async throws {
        let harness = try Harness(partners: partners(count: 3), graph: FailingIdentityGraph())

        let report = await harness.kernel.process(request(1, issued: true))
        let explained = await harness.kernel.explain(request(1, issued: true))

        #expect(report.plan.calls.isEmpty)
        #expect(report.results.isEmpty)
        #expect(harness.transport.records.isEmpty)
        #expect(explained.decisions.map(\.decision) == Array(repeating: .skip(.storeUnavailable), count: 3))
        #expect(try await harness.rateCount("p0", 1) == 0)
        let warnings = harness.logs.entries.filter { $0.level == .warning }
        #expect(warnings.map(\.message.description).contains("identity graph lookup failed; skipping pull sync"))
    }

    @Test("A rate limiter that throws: zero calls, every partner store_unavailable")
    func rateLimiterFails() async throws {
        let harness = try Harness(partners: partners(count: 3), rateLimiter: FailingRateLimiter())
        try await harness.seed(1)

        let report = await harness.kernel.process(request(1))
        let explained = await harness.kernel.explain(request(1))

        #expect(report.plan.calls.isEmpty)
        #expect(report.plan.decisions.map(\.decision) == Array(repeating: .skip(.storeUnavailable), count: 3))
        #expect(explained.decisions.map(\.decision) == Array(repeating: .skip(.storeUnavailable), count: 3))
        #expect(harness.transport.records.isEmpty)
        #expect(harness.decisions("p0", "store_unavailable") == 1)
        let warnings = harness.logs.entries.filter { $0.level == .warning }
        #expect(warnings.map(\.message.description).contains("rate limiter failed; skipping pull sync"))
    }

    @Test("With a per-request cap, a rate limiter failure marks every candidate store_unavailable, not deferred")
    func rateLimiterFailsWithCap() async throws {
        let harness = try Harness(
            partners: partners(count: 5),
            configuration: PullSyncConfiguration(maxCallsPerRequest: 2),
            rateLimiter: FailingRateLimiter()
        )
        try await harness.seed(1)

        let report = await harness.kernel.process(request(1))
        let explained = await harness.kernel.explain(request(1))

        #expect(report.plan.calls.isEmpty)
        #expect(report.plan.decisions.map(\.decision) == Array(repeating: .skip(.storeUnavailable), count: 5))
        #expect(explained.decisions.map(\.decision) == Array(repeating: .skip(.storeUnavailable), count: 5))
        #expect(harness.transport.records.isEmpty)
    }

    @Test("A rate limiter failure gives the budget tokens back")
    func rateLimiterFailureRefundsBudget() async throws {
        let harness = try Harness(
            partners: [TestPartners.partner("a", budgetPerSecond: 1)],
            rateLimiter: FailingRateLimiter()
        )
        try await harness.seed(1)

        let decisions = [
            await harness.kernel.process(request(1)).plan.decision(for: "a"),
            await harness.kernel.process(request(1)).plan.decision(for: "a"),
        ]

        #expect(decisions == [.skip(.storeUnavailable), .skip(.storeUnavailable)])
    }

    @Test("A graph whose write fails: the call was made, nothing is stored, the failure is counted")
    func writeFails() async throws {
        let base = InMemoryIdentityGraph()
        let harness = try Harness(partners: partners(["a"]), graph: WriteFailingIdentityGraph(base: base))
        harness.transport.script(TestPartners.host("a"), .uid("u-1"))

        let report = await harness.kernel.process(request(1, issued: true))

        let result = try #require(report.results.first)
        #expect(result.outcome == .uid("u-1"))
        #expect(result.write == nil)
        #expect(try await base.record(ecHash: hash(1))?.partners.isEmpty == true)
        #expect(harness.counter("pullsync_writes_total", [("partner", "a"), ("result", "error")]) == 1)
        let warnings = harness.logs.entries.filter { $0.level == .warning }
        #expect(warnings.map(\.message.description) == ["identity graph write failed"])
    }
}
