import PullSyncKernel
import PullSyncTesting
import Testing

@Suite struct InFlightDeduplicationTests {
    @Test("A second page view while the first one's call is out doesn't call the partner again")
    func secondViewSkipsInFlight() async throws {
        let harness = try Harness(partners: partners(["a"]))
        harness.transport.script(TestPartners.host("a"), .uid("u", after: .milliseconds(200)))
        try await harness.seed(1)
        async let first = harness.kernel.process(request(1))
        // Wait until the first call is at the partner, then view another page.
        #expect(await eventually { harness.transport.inFlight == 1 })
        let second = await harness.kernel.process(request(1))
        #expect(second.plan.decision(for: "a") == .skip(.inFlight))
        let firstReport = await first
        #expect(firstReport.results.first?.write == .stored)
        #expect(harness.calls("a") == 1)
        #expect(harness.decisions("a", "in_flight") == 1)
        // Once it is back, the pair is free again (here: fresh, so skipped as such).
        let third = await harness.kernel.process(request(1))
        #expect(third.plan.decision(for: "a") == .skip(.fresh))
        // explain shows in_flight too, without taking anything.
        harness.transport.script(TestPartners.host("a"), .uid("u", after: .milliseconds(200)))
        try await harness.seed(2)
        async let busy = harness.kernel.process(request(2))
        #expect(await eventually { harness.transport.inFlight == 1 })
        #expect(await harness.kernel.explain(request(2)).decision(for: "a") == .skip(.inFlight))
        _ = await busy
    }
}
