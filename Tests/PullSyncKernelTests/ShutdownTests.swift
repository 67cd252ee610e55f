import PullSyncKernel
import PullSyncTesting
import Testing

/// Graceful shutdown of the dispatcher: stop taking work, drop what is queued, let calls in
/// flight finish within the grace period (storing what they return), cancel the rest.
@Suite("Dispatcher shutdown")
struct ShutdownTests {
    @Test("Calls answering within the grace period are stored; slower ones are cancelled and not stored")
    func gracePeriod() async throws {
        let harness = try Harness(
            partners: [TestPartners.partner("fast"), TestPartners.partner("slow", timeout: .seconds(60))]
        )
        let fastAnswers = TestGate()
        let graceEnds = TestGate()
        harness.transport.script(TestPartners.host("fast"), ScriptedTransport.Reply.uid("fast-uid").held(by: fastAnswers))
        // The slow partner never answers: only the end of the grace period ends its call.
        harness.transport.script(TestPartners.host("slow"), ScriptedTransport.Reply.uid("slow-uid").held(by: TestGate()))
        let dispatcher = makeDispatcher(harness, graceEnds: graceEnds)
        #expect(dispatcher.submit(request(1, issued: true)) == .enqueued)
        let running = Task { await dispatcher.run() }
        #expect(await harness.transport.started(2))

        dispatcher.beginShutdown()
        // Inside the grace period the fast partner answers, and its UID is stored; then the grace
        // period ends with the slow call still out.
        fastAnswers.open()
        #expect(try await eventually { try await harness.storedUID(1, "fast") != nil })
        #expect(harness.transport.inFlight == 1)
        graceEnds.open()

        #expect(await finishes(running))
        #expect(try await harness.storedUID(1, "fast")?.uid == "fast-uid")
        #expect(try await harness.storedUID(1, "slow") == nil)
        let statistics = dispatcher.statistics
        #expect(statistics.processed == 1)
        #expect(statistics.stored == 1)
        #expect(statistics.outcomes == ["uid": 1, "transport_error": 1])
        #expect(harness.transport.records.allSatisfy { $0.endedAt != nil })
    }

    @Test("Queued requests that have not started are dropped at shutdown and leave no trace")
    func queuedJobsDropped() async throws {
        let answer = TestGate()
        let harness = try Harness(
            partners: partners(["a"]),
            configuration: PullSyncConfiguration(maxInFlightCalls: 1),
            fallback: ScriptedTransport.Reply.uid("u").held(by: answer)
        )
        // The grace period never ends on its own: the call in flight always gets to finish.
        let dispatcher = makeDispatcher(harness)
        let running = Task { await dispatcher.run() }
        #expect(dispatcher.submit(request(1, issued: true)) == .enqueued)
        #expect(await harness.transport.started(1))
        for n in 2...4 { #expect(dispatcher.submit(request(n, issued: true)) == .enqueued) }

        dispatcher.beginShutdown()
        answer.open()

        #expect(await finishes(running))
        let statistics = dispatcher.statistics
        #expect(statistics.processed == 1)
        #expect(statistics.droppedAtShutdown == 3)
        #expect(harness.transport.records.count == 1)
        #expect(try await harness.storedUID(1, "a")?.uid == "u")
        for n in 2...4 {
            #expect(try await harness.record(n) == nil)
            #expect(try await harness.rateCount("a", n) == 0)
        }
    }

    /// Two ways a call can be planned but not started when shutdown begins.
    enum Held: String, CaseIterable, CustomTestStringConvertible {
        /// Behind the request's own sliding window (one call at a time).
        case behindTheRequestWindow = "behind the request's window"
        /// Waiting for a global call slot (one slot in all).
        case waitingForAGlobalSlot = "waiting for a global slot"

        var testDescription: String { rawValue }

        var configuration: PullSyncConfiguration {
            switch self {
            case .behindTheRequestWindow:
                PullSyncConfiguration(perRequestConcurrency: 1)
            case .waitingForAGlobalSlot:
                PullSyncConfiguration(maxInFlightCalls: 1)
            }
        }
    }

    @Test(
        "Calls planned but not started when shutdown begins are never sent, and give their budget back",
        arguments: Held.allCases
    )
    func callsNotStartedAreNotSent(held: Held) async throws {
        let answer = TestGate()
        let harness = try Harness(
            partners: partners(count: 4) { $0.policy.budgetPerSecond = 1 },
            configuration: held.configuration,
            fallback: ScriptedTransport.Reply.uid("u").held(by: answer)
        )
        // The grace period never ends on its own: the call in flight always gets to finish.
        let dispatcher = makeDispatcher(harness)
        #expect(dispatcher.submit(request(1, issued: true)) == .enqueued)
        let running = Task { await dispatcher.run() }
        #expect(await harness.transport.started(1))

        dispatcher.beginShutdown()
        answer.open()

        #expect(await finishes(running))
        #expect(harness.transport.records.count == 1)
        #expect(dispatcher.statistics.calls == 1)
        #expect(dispatcher.statistics.stored == 1)
        #expect(try await harness.record(1)?.partners.count == 1)
        // At the same instant, only the partner that was called has used its one token.
        let sent = try #require(harness.transport.records.first?.request.url.host)
        let explained = await harness.kernel.explain(request(2, issued: true))
        for decision in explained.decisions {
            let wasSent = TestPartners.host(decision.partnerID) == sent
            #expect(decision.decision == (wasSent ? .skip(.budget) : .dispatch), "\(decision.partnerID)")
        }
    }
}
