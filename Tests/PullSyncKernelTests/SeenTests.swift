import PullSyncKernel
import PullSyncStorage
import PullSyncTesting
import Testing

/// Issue 19, retention: a decision records that its EC was seen, at most once a day, so idle ECs
/// can be told from active ones without a write per page view.
@Suite("EC last seen")
struct SeenTests {
    @Test("Recorded by a decision once a day at most; never for a withdrawn EC")
    func onceADay() async throws {
        let harness = try Harness(partners: partners(["a"]))
        let start = harness.clock.now()
        try await harness.seed(1, uids: ["a": uid("u", age: .zero, now: start)])
        func seenWrites() -> Int64 { harness.counter("pullsync_store_round_trips_total", [("operation", "seen")]) }

        _ = await harness.kernel.process(request(1))
        #expect(seenWrites() == 0, "seen when created, moments ago")

        harness.clock.advance(by: .seconds(2 * 86_400))
        _ = await harness.kernel.process(request(1))
        #expect(seenWrites() == 1)
        #expect(try await harness.record(1)?.seenAt == harness.clock.now())

        // Later the same day: nothing written, however many page views.
        for _ in 0..<3 {
            harness.clock.advance(by: .seconds(3600))
            _ = await harness.kernel.process(request(1))
        }
        #expect(seenWrites() == 1)

        #expect(try await harness.kernel.withdraw(EdgeCookie(unchecked: ec(1))))
        harness.clock.advance(by: .seconds(2 * 86_400))
        _ = await harness.kernel.process(request(1))
        #expect(seenWrites() == 1)
    }
}

/// Issue 17: what a decision costs the store, as `pullsync_store_round_trips_total` counts it.
@Suite("Store round trips of a decision")
struct DecisionRoundTripTests {
    @Test("An EC issued on this request costs one round trip for its record (created, not looked up first)")
    func issuedEC() async throws {
        let graph = LookupCountingGraph(base: InMemoryIdentityGraph())
        let harness = try Harness(partners: partners(["a"]), graph: graph)
        harness.transport.script(TestPartners.host("a"), .uid("u"))
        let report = await harness.kernel.process(request(1, issued: true))
        #expect(report.results.map(\.write) == [.stored])
        #expect(graph.lookups == 0)
        func trips(_ operation: String) -> Int64 {
            harness.counter("pullsync_store_round_trips_total", [("operation", operation)])
        }
        #expect(trips("create_root") == 1)
        #expect(trips("lookup") == 0)
        #expect(trips("admit") == 1)
        #expect(trips("write") == 1)
        // A returning browser's EC is looked up.
        harness.clock.advance(by: .seconds(2 * 86_400))
        _ = await harness.kernel.process(request(1))
        #expect(graph.lookups == 1)
        #expect(trips("lookup") == 1)
    }
}
