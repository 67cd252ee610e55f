import PullSyncKernel
import PullSyncTesting
import Testing

/// Spec "Behaviour" 4 and 9: the dispatcher takes organic requests without ever waiting,
/// behind a bounded queue that drops and counts under overload.
@Suite("Dispatcher")
struct DispatcherTests {
    @Test("submit skips gate failures without queueing them, and counts each reason")
    func skippedAtSubmit() async throws {
        let harness = try Harness(partners: partners(count: 2), configuration: PullSyncConfiguration(queueCapacity: 1))
        let dispatcher = PullDispatcher(kernel: harness.kernel)

        #expect(dispatcher.submit(request(1, path: "/sync")) == .skipped(.route))
        #expect(dispatcher.submit(request(1, path: "/_pullsync/ids")) == .skipped(.route))
        #expect(
            dispatcher.submit(OrganicRequest(path: "/", edgeCookie: "not-an-ec", consent: .granted))
                == .skipped(.invalidEC)
        )
        #expect(
            dispatcher.submit(OrganicRequest(path: "/", edgeCookie: nil, consent: .granted)) == .skipped(.invalidEC)
        )
        #expect(dispatcher.submit(request(1, consent: .denied)) == .skipped(.consent))
        // The queue of one is still free.
        #expect(dispatcher.submit(request(1)) == .enqueued)

        let statistics = dispatcher.statistics
        #expect(statistics.skippedAtSubmit == 5)
        #expect(statistics.enqueued == 1)
        #expect(statistics.dropped == 0)
        #expect(harness.counter("pullsync_submissions_total", [("result", "skipped")]) == 5)
        #expect(harness.counter("pullsync_request_skips_total", [("reason", "route")]) == 2)
        #expect(harness.counter("pullsync_request_skips_total", [("reason", "invalid_ec")]) == 2)
        #expect(harness.counter("pullsync_request_skips_total", [("reason", "consent")]) == 1)
        #expect(harness.counter("pullsync_submissions_total", [("result", "enqueued")]) == 1)
    }

    @Test("prepare decides at the gate at once; only handOver queues; a plain skip needs no hand-over")
    func prepareThenHandOver() async throws {
        let harness = try Harness(partners: partners(count: 2), configuration: PullSyncConfiguration(queueCapacity: 1))
        let dispatcher = PullDispatcher(kernel: harness.kernel)

        let skipped = dispatcher.prepare(request(1, path: "/sync"))
        #expect(skipped.skipReason == .route)
        #expect(!skipped.needsHandOver)
        // Counted at the gate, since the host may never hand it over.
        #expect(dispatcher.statistics.skippedAtSubmit == 1)
        #expect(harness.counter("pullsync_request_skips_total", [("reason", "route")]) == 1)

        let passing = dispatcher.prepare(request(1))
        #expect(passing.skipReason == nil)
        #expect(passing.needsHandOver)
        #expect(dispatcher.statistics.enqueued == 0)
        // A prepared request holds no place in the queue (of one) until it is handed over.
        #expect(dispatcher.submit(request(2)) == .enqueued)
        #expect(passing.handOver() == .dropped)
        #expect(dispatcher.statistics.dropped == 1)

        // A denial with a well-formed EC: its withdrawal waits for the hand-over too.
        let denied = dispatcher.prepare(request(3, consent: .denied))
        #expect(denied.skipReason == .consent)
        #expect(denied.needsHandOver)
        #expect(denied.handOver() == .skipped(.consent))
        #expect(dispatcher.statistics.skippedAtSubmit == 2)
        #expect(harness.counter("pullsync_submissions_total", [("result", "skipped")]) == 2)
    }

    @Test("While the queue is full, the gate drops a request it passes at once: nothing to hand over, counted once")
    func fullQueueDropsAtTheGate() async throws {
        let harness = try Harness(partners: partners(count: 2), configuration: PullSyncConfiguration(queueCapacity: 1))
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        #expect(dispatcher.submit(request(1)) == .enqueued)

        let turnedAway = dispatcher.prepare(request(2))
        #expect(turnedAway.skipReason == nil)
        #expect(!turnedAway.needsHandOver)
        #expect(dispatcher.statistics.dropped == 1)
        #expect(turnedAway.handOver() == .dropped)
        #expect(dispatcher.statistics.dropped == 1)
        #expect(harness.counter("pullsync_submissions_total", [("result", "dropped")]) == 1)

        // Once the queue has room again, the gate passes requests on.
        let running = Task { await dispatcher.run() }
        #expect(await eventually { dispatcher.statistics.processed == 1 })
        let next = dispatcher.prepare(request(3))
        #expect(next.needsHandOver)
        #expect(next.handOver() == .enqueued)
        #expect(await eventually { dispatcher.statistics.processed == 2 })
        dispatcher.beginShutdown()
        await running.value
    }

    @Test(
        "Facts a host hands the gate (EC parsed, consent rules applied or not) decide as the gate would alone",
        arguments: [
            request(1),
            request(2, issued: true),
            request(3, consent: .denied),
            request(4, consentStrings: ConsentStrings(globalPrivacyControl: true)),
            request(5, consentStrings: ConsentStrings(usPrivacy: "1YYN")),
            request(6, consentStrings: ConsentStrings(usPrivacy: "garbage")),
            OrganicRequest(path: "/", edgeCookie: "not-an-ec", consent: .granted),
            OrganicRequest(path: "/", edgeCookie: nil, consent: .denied),
        ]
    )
    func gateFactsDecideAsTheGate(organic: OrganicRequest) throws {
        let kernel = try Harness(partners: partners(count: 2)).kernel
        let alone = kernel.admission(organic)
        let parsed = organic.edgeCookie.flatMap(kernel.configuration.edgeCookieFormat.parse)
        let denial = kernel.consent.requestDenial(organic.consentStrings, host: organic.consent)
        for facts in [GateFacts(edgeCookie: parsed), GateFacts(edgeCookie: parsed, denial: .some(denial))] {
            let handed = kernel.admission(organic, facts: facts)
            #expect(handed.result == alone.result)
            #expect(handed.withdrawing == alone.withdrawing)
        }
    }

    @Test("A full queue drops and counts; run() then processes what was queued")
    func overflowThenRun() async throws {
        let harness = try Harness(
            partners: partners(["a"]),
            configuration: PullSyncConfiguration(queueCapacity: 4),
            fallback: .uid("u")
        )
        let dispatcher = PullDispatcher(kernel: harness.kernel)

        let results = (1...6).map { dispatcher.submit(request($0, issued: true)) }

        #expect(results == [.enqueued, .enqueued, .enqueued, .enqueued, .dropped, .dropped])
        #expect(dispatcher.statistics.enqueued == 4)
        #expect(dispatcher.statistics.dropped == 2)
        #expect(harness.counter("pullsync_submissions_total", [("result", "dropped")]) == 2)
        #expect(harness.counter("pullsync_submissions_total", [("result", "enqueued")]) == 4)
        #expect(harness.transport.records.isEmpty)

        let running = Task { await dispatcher.run() }
        let processed = await eventually { dispatcher.statistics.processed == 4 }
        dispatcher.beginShutdown()
        #expect(await finishes(running))

        #expect(processed)
        let statistics = dispatcher.statistics
        #expect(statistics.calls == 4)
        #expect(statistics.stored == 4)
        #expect(statistics.outcomes == ["uid": 4])
        for n in 1...4 { #expect(try await harness.storedUID(n, "a")?.uid == "u") }
        // Dropped requests left no trace.
        for n in 5...6 { #expect(try await harness.record(n) == nil) }
        #expect(harness.transport.records.count == 4)
    }

    @Test("Requests submitted while running are processed; unknown ECs are processed without calls")
    func submitWhileRunning() async throws {
        let harness = try Harness(partners: partners(["a", "b"]), fallback: .uid("u", after: .milliseconds(10)))  // a partner's latency
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        let running = Task { await dispatcher.run() }

        #expect(dispatcher.submit(request(1, issued: true)) == .enqueued)
        #expect(dispatcher.submit(request(2)) == .enqueued)
        #expect(dispatcher.submit(request(3, issued: true)) == .enqueued)
        let processed = await eventually { dispatcher.statistics.processed == 3 }
        dispatcher.beginShutdown()
        #expect(await finishes(running))

        #expect(processed)
        #expect(dispatcher.statistics.calls == 4)
        #expect(dispatcher.statistics.stored == 4)
        #expect(try await harness.record(2) == nil)
        #expect(try await harness.storedUID(3, "b")?.uid == "u")
    }

    @Test("submit after shutdown answers notRunning and counts it")
    func submitAfterShutdown() async throws {
        let harness = try Harness(partners: partners(["a"]))
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        let running = Task { await dispatcher.run() }
        dispatcher.beginShutdown()
        dispatcher.beginShutdown()
        #expect(await finishes(running))

        #expect(dispatcher.isShuttingDown)
        #expect(dispatcher.submit(request(1, issued: true)) == .notRunning)
        #expect(dispatcher.submit(request(1, path: "/sync")) == .skipped(.route))
        #expect(dispatcher.statistics.notRunning == 1)
        #expect(harness.counter("pullsync_submissions_total", [("result", "not_running")]) == 1)
        #expect(harness.transport.records.isEmpty)
    }

    @Test("submit after beginShutdown, before run() was ever called, answers notRunning")
    func shutdownBeforeRun() async throws {
        let harness = try Harness(partners: partners(["a"]))
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        #expect(dispatcher.submit(request(1, issued: true)) == .enqueued)
        dispatcher.beginShutdown()

        #expect(dispatcher.submit(request(2, issued: true)) == .notRunning)
        let running = Task { await dispatcher.run() }
        #expect(await finishes(running))
        #expect(dispatcher.statistics.droppedAtShutdown == 1)
        #expect(dispatcher.statistics.processed == 0)
        #expect(harness.transport.records.isEmpty)
    }

    @Test("Cancelling the task running run() ends it promptly and cancels calls in flight")
    func cancellation() async throws {
        let harness = try Harness(
            partners: [TestPartners.partner("slow", timeout: .seconds(60))],
            fallback: ScriptedTransport.Reply.uid("never").held(by: TestGate())  // never answers
        )
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        let running = Task { await dispatcher.run() }
        #expect(dispatcher.submit(request(1, issued: true)) == .enqueued)
        #expect(await harness.transport.started(1))

        running.cancel()

        #expect(await finishes(running))
        #expect(harness.transport.inFlight == 0)
        #expect(try await harness.storedUID(1, "slow") == nil)
        #expect(dispatcher.submit(request(2, issued: true)) == .notRunning)
    }
}
