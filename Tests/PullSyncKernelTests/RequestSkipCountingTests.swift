import PullSyncKernel
import PullSyncTesting
import Testing

@Suite struct RequestSkipCountingTests {
    @Test(
        "Request-level skips decided after queueing are counted once per request",
        arguments: [("unknown", "unknown_ec"), ("withdrawn", "consent")]
    )
    func countedOnce(scenario: String, reason: String) async throws {
        let harness = try Harness(partners: partners(["a", "b"]))
        if scenario == "withdrawn" {
            try await harness.seed(1)
            _ = try await harness.graph.withdraw(ecHash: hash(1), at: harness.clock.now())
        }
        let report = await harness.kernel.process(request(1))
        #expect(report.plan.requestSkip?.rawValue == reason)
        #expect(report.results.isEmpty)
        #expect(harness.counter("pullsync_request_skips_total", [("reason", reason)]) == 1)
        #expect(harness.decisions("a", "dispatch") == 0)
    }

    @Test("A request that goes on has no request-level skip")
    func noRequestSkip() async throws {
        let harness = try Harness(partners: partners(["a"]))
        let report = await harness.kernel.process(request(1, issued: true))
        #expect(report.plan.requestSkip == nil)
        #expect(report.plan.decision(for: "a") == .dispatch)
    }
}
