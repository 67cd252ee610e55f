import PullSyncKernel
import PullSyncTesting
import Testing

@Suite struct InFlightDeduplicationTests {
    @Test("A second page view while the first one's call is out doesn't call the partner again")
    func secondViewSkipsInFlight() async throws {
        let harness = try Harness(partners: partners(["a"]))
        let firstAnswer = TestGate()
        harness.transport.script(TestPartners.host("a"), ScriptedTransport.Reply.uid("u").held(by: firstAnswer))
        try await harness.seed(1)
        async let first = harness.kernel.process(request(1))
        // Once the first call is at the partner (held there), view another page.
        #expect(await harness.transport.started(1))
        let second = await harness.kernel.process(request(1))
        #expect(second.plan.decision(for: "a") == .skip(.inFlight))
        firstAnswer.open()
        let firstReport = await first
        #expect(firstReport.results.first?.write == .stored)
        #expect(harness.calls("a") == 1)
        #expect(harness.decisions("a", "in_flight") == 1)
        // Once it is back, the pair is free again (here: fresh, so skipped as such, and at the
        // gate: the call left the fresh-EC memo holding).
        #expect(await harness.kernel.explain(request(1)).decision(for: "a") == .skip(.fresh))
        #expect(await harness.kernel.process(request(1)).plan.requestSkip == .freshMemo)
        // explain shows in_flight too, without taking anything.
        let busyAnswer = TestGate()
        harness.transport.script(TestPartners.host("a"), ScriptedTransport.Reply.uid("u").held(by: busyAnswer))
        try await harness.seed(2)
        async let busy = harness.kernel.process(request(2))
        #expect(await harness.transport.started(2))
        #expect(await harness.kernel.explain(request(2)).decision(for: "a") == .skip(.inFlight))
        busyAnswer.open()
        _ = await busy
    }
}
