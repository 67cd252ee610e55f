import PullSyncKernel
import PullSyncTesting
import Testing

/// Issue 8: a flood of well-formed ECs nobody issued calls no partner, whatever their number.
@Suite("Spoof flood")
struct SpoofFloodTests {
    @Test("10,000 random well-formed unknown ECs through a dispatcher: zero partner calls, nothing counted")
    func tenThousandUnknownECs() async throws {
        let harness = try Harness(
            partners: partners(count: 6),
            configuration: PullSyncConfiguration(queueCapacity: 16_384)
        )
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        let running = Task { await dispatcher.run() }
        var random = SeededRandomSource(seed: 8)
        let hex = Array("0123456789abcdef")
        let alphanumerics = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        for n in 0..<10_000 {
            let ec =
                String((0..<64).map { _ in hex.randomElement(using: &random)! }) + "."
                + String((0..<6).map { _ in alphanumerics.randomElement(using: &random)! })
            let result = dispatcher.submit(OrganicRequest(path: "/p/\(n)", edgeCookie: ec, consent: .granted))
            #expect(result == .enqueued)
        }
        // A generous hang guard: 10,000 requests beside the rest of the suite on two busy cores.
        #expect(await eventually(within: .seconds(600)) { dispatcher.statistics.processed == 10_000 })
        dispatcher.beginShutdown()
        #expect(await finishes(running))

        #expect(harness.transport.records.isEmpty)
        #expect(dispatcher.statistics.calls == 0)
        #expect(dispatcher.statistics.skips["unknown_ec"] == 10_000)
        #expect(harness.counter("pullsync_request_skips_total", [("reason", "unknown_ec")]) == 10_000)
        #expect(try await harness.rateCount("p0", 1) == 0)
    }
}
