import PullSyncKernel
import PullSyncTesting
import Testing

/// Issue 8, hot reload in the kernel: a dispatcher swaps its registry atomically; partners that
/// stay keep their protection state; calls in flight finish and are not duplicated.
@Suite("Hot reload")
struct ReloadTests {
    @Test("A partner that stays keeps its open circuit and its pause; a new one starts closed")
    func stateCarriesOver() async throws {
        let harness = try Harness(partners: partners(["a", "b"]))
        harness.transport.script(TestPartners.host("a"), .status(500))
        harness.transport.script(
            TestPartners.host("b"),
            ScriptedTransport.Reply(.response(status: 429, headers: [("Retry-After", "60")], body: []))
        )
        for n in 1...5 { _ = await harness.kernel.process(request(n, issued: true)) }
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        #expect(await dispatcher.kernel.explain(request(9, issued: true)).decision(for: "a") == .skip(.circuitOpen))

        // Reordered, one partner added: "a" and "b" are found by id.
        let reloaded = dispatcher.reload(try PartnerRegistry(partners(["c", "b", "a"])))
        #expect(reloaded.registry.partners.map(\.id) == ["c", "b", "a"])
        #expect(dispatcher.kernel.registry.partners.map(\.id) == ["c", "b", "a"])
        let plan = await dispatcher.kernel.explain(request(9, issued: true))
        #expect(plan.decision(for: "a") == .skip(.circuitOpen))
        #expect(plan.decision(for: "b") == .skip(.partnerPaused))
        #expect(plan.decision(for: "c") == .dispatch)
        // A partner removed and added again later starts afresh.
        dispatcher.reload(try PartnerRegistry(partners(["b"])))
        dispatcher.reload(try PartnerRegistry(partners(["a", "b"])))
        #expect(await dispatcher.kernel.explain(request(9, issued: true)).decision(for: "a") == .dispatch)
    }

    @Test("A partner whose budget changed keeps its circuit but gets the new budget")
    func budgetChange() async throws {
        let harness = try Harness(partners: partners(["a"]) { $0.policy.budgetPerSecond = 1 })
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        #expect(await dispatcher.kernel.process(request(1, issued: true)).plan.decision(for: "a") == .dispatch)
        #expect(await dispatcher.kernel.process(request(2, issued: true)).plan.decision(for: "a") == .skip(.budget))
        dispatcher.reload(try PartnerRegistry(partners(["a"]) { $0.policy.budgetPerSecond = 100 }))
        #expect(await dispatcher.kernel.process(request(3, issued: true)).plan.decision(for: "a") == .dispatch)
    }

    @Test("A call in flight across a reload finishes, is stored, and is not made twice")
    func inFlightAcrossReload() async throws {
        let harness = try Harness(partners: partners(["a"]))
        let answer = TestGate()
        harness.transport.script(TestPartners.host("a"), ScriptedTransport.Reply.uid("u-1").held(by: answer))
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        let running = Task { await dispatcher.run() }
        #expect(dispatcher.submit(request(1, issued: true)) == .enqueued)
        #expect(await harness.transport.started(1))

        dispatcher.reload(try PartnerRegistry(partners(["a", "b"])))
        // The same EC again while the first call is out (held): not called twice, on the new kernel either.
        #expect(dispatcher.submit(request(1)) == .enqueued)
        #expect(await eventually { dispatcher.statistics.skips["in_flight", default: 0] == 1 })
        answer.open()
        #expect(await eventually { dispatcher.statistics.processed == 2 })
        dispatcher.beginShutdown()
        #expect(await finishes(running))

        #expect(harness.calls("a") == 1)
        #expect(dispatcher.statistics.stored >= 1)
        #expect(try await harness.storedUID(1, "a")?.uid == "u-1")
        #expect(dispatcher.statistics.skips["in_flight", default: 0] == 1)
    }
}
