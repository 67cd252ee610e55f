import PullSyncKernel
import PullSyncTesting
import Testing

@Suite struct CircuitBookkeepingTests {
    @Test("A refused target neither opens nor resets a partner's circuit")
    func refusedTargetIsNeutral() async throws {
        let harness = try Harness(
            partners: partners(["a"]),
            configuration: PullSyncConfiguration(circuitBreaker: CircuitBreakerPolicy(failureThreshold: 2))
        )
        // One real failure, then refusals by the target check, then one more failure: the
        // refusals must not reset the count, so the second failure opens the circuit.
        harness.transport.script(TestPartners.host("a"), .status(500))
        _ = await harness.kernel.process(request(1, issued: true))
        harness.transport.script(TestPartners.host("a"), .failure(.refusedTarget))
        for n in 2...4 { _ = await harness.kernel.process(request(n, issued: true)) }
        harness.transport.script(TestPartners.host("a"), .status(500))
        _ = await harness.kernel.process(request(5, issued: true))
        let next = await harness.kernel.process(request(6, issued: true))
        #expect(next.plan.decision(for: "a") == .skip(.circuitOpen))
        #expect(harness.calls("a") == 5)
    }
}
