import PullSyncKernel
import PullSyncTesting
import Testing

@Suite struct RecentlyIssuedTests {
    @Test("A browser's second page view counts as known even if the first was turned away by a full queue")
    func issuedThenDroppedStillKnown() async throws {
        let harness = try Harness(partners: partners(["a"]), configuration: PullSyncConfiguration(queueCapacity: 1))
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        #expect(dispatcher.submit(request(100, issued: true)) == .enqueued)
        // The queue is full: the issued EC's own request is dropped…
        #expect(dispatcher.submit(request(1, issued: true)) == .dropped)
        let running = Task { await dispatcher.run() }
        #expect(await eventually { dispatcher.statistics.processed == 1 })
        // …but its next page view (cookie now set, not issued) is still known, and calls.
        #expect(dispatcher.submit(request(1)) == .enqueued)
        #expect(await eventually { dispatcher.statistics.processed == 2 })
        #expect(harness.calls("a") == 2)
        #expect(try await harness.record(1) != nil)
        // A spoofed, never-issued EC stays unknown.
        #expect(dispatcher.submit(request(2)) == .enqueued)
        #expect(await eventually { dispatcher.statistics.processed == 3 })
        #expect(harness.calls("a") == 2)
        dispatcher.beginShutdown()
        _ = await finishes(running)
    }
}
