import MetricsTestKit
import PullSyncKernel
import PullSyncTesting
import Testing

/// Spec "Behaviour" 10: every decision and outcome is countable, labelled with the partner and
/// the reason, on the injected metrics factory.
@Suite("Metrics")
struct MetricsTests {
    @Test("One dispatch and one fresh skip are counted with partner and reason labels")
    func dispatchAndFresh() async throws {
        let harness = try Harness(partners: partners(["a", "b"]))
        harness.transport.script(TestPartners.host("a"), .uid("u-a"))
        try await harness.seed(1, uids: ["b": uid("fresh", age: .seconds(60), now: harness.clock.now())])

        _ = await harness.kernel.process(request(1))

        #expect(harness.decisions("a", "dispatch") == 1)
        #expect(harness.decisions("b", "fresh") == 1)
        #expect(harness.counter("pullsync_outcomes_total", [("partner", "a"), ("outcome", "uid")]) == 1)
        #expect(harness.counter("pullsync_writes_total", [("partner", "a"), ("result", "stored")]) == 1)
        // Nothing else was counted.
        #expect(harness.metrics.counterTotal(label: "pullsync_decisions_total") == 2)
        #expect(harness.metrics.counterTotal(label: "pullsync_outcomes_total") == 1)
        #expect(harness.metrics.counterTotal(label: "pullsync_writes_total") == 1)
        #expect(harness.metrics.counterTotal(label: "pullsync_submissions_total") == 0)
        #expect(try harness.metrics.expectTimer("pullsync_call_duration_seconds", [("partner", "a")]).values.count == 1)
        #expect(try harness.metrics.expectTimer("pullsync_call_duration_seconds", [("partner", "b")]).values.isEmpty)
        let inFlight = try harness.metrics.expectMeter("pullsync_inflight_calls")
        #expect(inFlight.values.max() == 1)
        #expect(inFlight.lastValue == 0)
    }

    @Test("Each skip reason and outcome class is labelled by name")
    func reasonsAndOutcomes() async throws {
        let harness = try Harness(
            partners: [
                TestPartners.partner("failing"),
                TestPartners.partner("limited", rateLimit: RateLimitPolicy(calls: 1)),
                TestPartners.partner("gone"),
            ]
        )
        harness.transport.script(TestPartners.host("failing"), .status(500))
        harness.transport.script(TestPartners.host("gone"), .failure(.timeout))
        try await harness.seed(1)

        _ = await harness.kernel.process(request(1))
        _ = await harness.kernel.process(request(1))

        #expect(harness.decisions("failing", "dispatch") == 2)
        #expect(harness.decisions("limited", "dispatch") == 1)
        #expect(harness.decisions("limited", "rate_limited") == 1)
        #expect(harness.counter("pullsync_outcomes_total", [("partner", "failing"), ("outcome", "http_error")]) == 2)
        #expect(harness.counter("pullsync_outcomes_total", [("partner", "limited"), ("outcome", "not_found")]) == 1)
        #expect(harness.counter("pullsync_outcomes_total", [("partner", "gone"), ("outcome", "timeout")]) == 2)
        #expect(harness.metrics.counterTotal(label: "pullsync_writes_total") == 0)
    }

    @Test("A metric handle is found by its case: every case of every labelled enum gets its own")
    func handlesByCase() {
        func check<Key: CaseIterable & RawRepresentable>(_: Key.Type) where Key.RawValue == String {
            let table = CaseTable<Key, String> { $0.rawValue }
            #expect(Key.allCases.map { table[$0] } == Key.allCases.map(\.rawValue))
        }
        check(SkipReason.self)
        check(OutcomeClass.self)
        check(WriteResult.self)
        check(StoreOperation.self)
    }

    @Test("Every metric is created up front for every partner, decision and outcome")
    func createdUpFront() throws {
        let harness = try Harness(partners: partners(["a", "b", "c"]))

        #expect(
            harness.metrics.counters(label: "pullsync_decisions_total").count == 3 * (1 + SkipReason.allCases.count)
        )
        #expect(harness.metrics.counters(label: "pullsync_outcomes_total").count == 3 * OutcomeClass.allCases.count)
        #expect(harness.metrics.counters(label: "pullsync_writes_total").count == 3 * (WriteResult.allCases.count + 1))
        let submissionResults = harness.metrics.counters(label: "pullsync_submissions_total")
            .compactMap { counter in counter.dimensions.first { $0.0 == "result" }?.1 }
        #expect(Set(submissionResults) == ["enqueued", "dropped", "not_running", "skipped"])
        #expect(harness.metrics.counters(label: "pullsync_request_skips_total").count == SkipReason.allCases.count)
        #expect(harness.metrics.timers(label: "pullsync_call_duration_seconds").count == 3)
        #expect(harness.metrics.counters.allSatisfy { $0.totalValue == 0 })
    }
}
