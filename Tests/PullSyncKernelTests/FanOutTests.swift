import PullSyncKernel
import PullSyncTesting
import Testing

/// Spec "Behaviour" 4: bounded fan-out in a sliding window, no head-of-line blocking, and a
/// global cap on calls in flight.
@Suite("Fan-out")
struct FanOutTests {
    @Test("6 partners held until 3 calls are out, with perRequestConcurrency 3: all called, never more than 3 at once")
    func perRequestConcurrency() async throws {
        let answer = TestGate()
        let harness = try Harness(partners: partners(count: 6), fallback: ScriptedTransport.Reply.uid("u").held(by: answer))
        try await harness.seed(1)

        async let processed = harness.kernel.process(request(1))
        // The window fills before anyone answers: three calls out, the other three waiting.
        #expect(await harness.transport.started(3))
        #expect(harness.transport.inFlight == 3)
        answer.open()
        let report = await processed

        #expect(report.results.count == 6)
        #expect(Set(harness.transport.requests.map(\.url.host)) == Set((0..<6).map { TestPartners.host("p\($0)") }))
        #expect(harness.transport.peakInFlight == 3)
        #expect(report.results.allSatisfy { $0.write == .stored })
        #expect(try await harness.record(1)?.partners.count == 6)
    }

    @Test("perRequestConcurrency 1 calls partners one after another")
    func sequential() async throws {
        let harness = try Harness(
            partners: partners(count: 4),
            configuration: PullSyncConfiguration(perRequestConcurrency: 1),
            fallback: .status(404, after: .milliseconds(10))  // a partner's latency
        )
        try await harness.seed(1)

        _ = await harness.kernel.process(request(1))

        let records = harness.transport.records
        #expect(records.count == 4)
        #expect(harness.transport.peakInFlight == 1)
        for (earlier, later) in zip(records, records.dropFirst()) {
            let ended = try #require(earlier.endedAt)
            #expect(ended <= later.startedAt)
        }
    }

    @Test("Sliding window, not batch-and-wait: one slow partner doesn't hold back the five fast ones")
    func noHeadOfLineBlocking() async throws {
        let ids = (0..<6).map { "p\($0)" }
        // The kernel's order comes from the random source; with the same seed, explain and
        // process shuffle alike, so explain tells which partner goes first. Make that one slow.
        let seed: UInt64 = 42
        let probe = try Harness(partners: partners(ids), random: SeededRandomSource(seed: seed))
        try await probe.seed(1)
        let slowID = try #require(await probe.kernel.explain(request(1)).calls.first?.partnerID)

        // Every partner answers only when the test says so: the fast ones once the first window is
        // full, the slow one after every fast call has ended.
        let fastAnswer = TestGate()
        let slowAnswers = TestGate()
        let harness = try Harness(
            partners: partners(ids),
            fallback: ScriptedTransport.Reply.status(404).held(by: fastAnswer),
            random: SeededRandomSource(seed: seed)
        )
        let slowHost = TestPartners.host(slowID)
        harness.transport.script(slowHost, ScriptedTransport.Reply.status(404).held(by: slowAnswers))
        try await harness.seed(1)

        async let processed = harness.kernel.process(request(1))
        #expect(await harness.transport.started(3))
        #expect(harness.transport.inFlight == 3)
        fastAnswer.open()
        // All five fast calls start and end while the slow one is out. Batch-and-wait windows of
        // three would never get there (the slow call holds its batch): the hang guard fails it.
        let fastEnded = await harness.transport.ended(5)
        #expect(fastEnded, "the fast calls were held back behind the slow one")
        let whileSlowOut = harness.transport.records
        slowAnswers.open()
        let report = await processed

        #expect(report.plan.calls.first?.partnerID == slowID)
        #expect(whileSlowOut.count == 6)
        let slow = try #require(whileSlowOut.first { $0.request.url.host == slowHost })
        #expect(slow.endedAt == nil, "the slow call was still out")
        // The slow call started in the first window.
        #expect(whileSlowOut.prefix(3).contains { $0.request.url.host == slowHost })
        let fast = whileSlowOut.filter { $0.request.url.host != slowHost }
        #expect(fast.count == 5)
        #expect(fast.allSatisfy { $0.endedAt != nil })
        #expect(harness.transport.records.allSatisfy { $0.endedAt != nil })
        #expect(harness.transport.peakInFlight == 3)
    }

    @Test("A lane keeps its call slot for its request's next call: a request once started is not overtaken")
    func laneKeepsItsSlot() async throws {
        // Request 1 (EC 1) has only the a-partners to call, request 2 only the b-partners (each
        // EC holds the others' UIDs, fresh): a call's host tells whose call it is.
        let first = ["a1", "a2", "a3"]
        let second = ["b1", "b2", "b3"]
        let harness = try Harness(
            partners: partners(first + second),
            configuration: PullSyncConfiguration(perRequestConcurrency: 2, maxInFlightCalls: 2)
        )
        var gates: [String: TestGate] = [:]
        for id in first + second {
            let gate = TestGate()
            gates[TestPartners.host(id)] = gate
            harness.transport.script(TestPartners.host(id), ScriptedTransport.Reply.status(404).held(by: gate))
        }
        let fresh = PartnerUID(uid: "kept", syncedAt: harness.clock.now())
        try await harness.seed(1, uids: Dictionary(uniqueKeysWithValues: second.map { ($0, fresh) }))
        try await harness.seed(2, uids: Dictionary(uniqueKeysWithValues: first.map { ($0, fresh) }))
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        let running = Task { await dispatcher.run() }

        #expect(dispatcher.submit(request(1)) == .enqueued)
        // Both slots: request 1's two lanes.
        #expect(await harness.transport.started(2))
        #expect(dispatcher.submit(request(2)) == .enqueued)
        // Request 2 is decided; its lanes wait for a slot.
        #expect(await eventually { second.allSatisfy { harness.decisions($0, "dispatch") == 1 } })

        // One of request 1's calls ends: its lane goes on to request 1's third call with the slot
        // it holds. (Given back, the slot would go to request 2's lane, waiting first.)
        let endedHost = harness.transport.records[0].request.url.host
        gates[endedHost]?.open()
        #expect(await harness.transport.started(3))
        let third = harness.transport.records[2].request.url.host
        #expect(first.map(TestPartners.host).contains(third), "the third call was \(third)'s")

        for gate in gates.values { gate.open() }
        #expect(await eventually { dispatcher.statistics.processed == 2 })
        #expect(harness.transport.records.count == 6)
        #expect(harness.transport.peakInFlight <= 2)
        dispatcher.beginShutdown()
        #expect(await finishes(running))
    }

    @Test("The global maxInFlightCalls caps calls across concurrent requests in the dispatcher")
    func globalCap() async throws {
        let harness = try Harness(
            partners: partners(count: 3),
            configuration: PullSyncConfiguration(maxInFlightCalls: 2),
            // 20 ms: a partner's latency, so that calls of different requests overlap.
            fallback: .status(404, after: .milliseconds(20))
        )
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        for n in 1...4 { #expect(dispatcher.submit(request(n, issued: true)) == .enqueued) }

        let running = Task { await dispatcher.run() }
        let done = await eventually { dispatcher.statistics.processed == 4 }
        dispatcher.beginShutdown()
        #expect(await finishes(running))

        #expect(done)
        #expect(harness.transport.records.count == 12)
        #expect(harness.transport.peakInFlight <= 2)
        #expect(dispatcher.statistics.calls == 12)
    }
}
