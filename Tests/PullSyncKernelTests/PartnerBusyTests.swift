import PullSyncKernel
import PullSyncTesting
import Testing

@Suite struct PartnerBusyTests {
    @Test("A hanging partner can hold at most its in-flight cap; the others keep being called")
    func hangingPartnerDoesNotStarveOthers() async throws {
        let harness = try Harness(
            partners: partners(["slow", "fast"]) { $0.policy.timeout = .seconds(30) },
            configuration: PullSyncConfiguration(maxInFlightCalls: 4, maxInFlightPerPartner: 2)
        )
        // The slow partner never answers (its calls end only at shutdown); the fast one answers
        // after a partner's latency.
        harness.transport.script(TestPartners.host("slow"), ScriptedTransport.Reply.uid("s").held(by: TestGate()))
        harness.transport.script(TestPartners.host("fast"), .uid("f", after: .milliseconds(5)))
        let graceEnds = TestGate()
        let dispatcher = makeDispatcher(harness, graceEnds: graceEnds)
        let running = Task { await dispatcher.run() }
        // Page views one after another: without the cap, the hanging partner would take all
        // four global slots by the fourth request and every later call would wait for good.
        for n in 1...12 {
            _ = dispatcher.submit(request(n, issued: true))
            let stored = try await eventually { try await harness.storedUID(n, "fast") != nil }
            #expect(stored, "request \(n)")
        }
        #expect(harness.transport.count(host: TestPartners.host("slow")) == 2)
        #expect(harness.decisions("slow", "partner_busy") == 10)
        #expect(harness.decisions("fast", "dispatch") == 12)
        dispatcher.beginShutdown()
        graceEnds.open()  // the slow calls are cut at once
        #expect(await finishes(running))
    }

    @Test("The default per-partner cap is half the global cap, at least the per-request window")
    func defaults() {
        #expect(PullSyncConfiguration().effectiveMaxInFlightPerPartner == 64)
        #expect(PullSyncConfiguration(maxInFlightCalls: 4).effectiveMaxInFlightPerPartner == 3)
        #expect(PullSyncConfiguration(maxInFlightPerPartner: 5).effectiveMaxInFlightPerPartner == 5)
    }
}
