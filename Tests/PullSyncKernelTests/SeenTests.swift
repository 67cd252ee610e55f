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
