@testable import PullSyncKernel
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

@Suite struct RecentECHashesTests {
    private func hash(_ n: Int) -> ECHash {
        // Each from a string of its own: the table matches the text, not the storage.
        ECHash(EdgeCookie(unchecked: TestPartners.edgeCookie(n)).hash)
    }

    @Test("Holds the last `capacity` hashes inserted; the oldest leaves first, a repeat takes no place")
    func boundedOldestFirst() {
        let table = RecentECHashes(capacity: 3)
        for n in [1, 2, 3, 2] { table.insert(hash(n)) }
        #expect([1, 2, 3].allSatisfy { table.contains(hash($0)) })
        table.insert(hash(4))
        #expect(!table.contains(hash(1)))
        #expect([2, 3, 4].allSatisfy { table.contains(hash($0)) })
        table.insert(hash(5))
        table.insert(hash(6))
        #expect(!table.contains(hash(2)) && !table.contains(hash(3)))
        #expect([4, 5, 6].allSatisfy { table.contains(hash($0)) })
        #expect(!table.contains(hash(7)))
    }

    @Test("A large table holds nearly all of the last `capacity` keys, and none long after")
    func largeTableKeepsRecentKeys() {
        let table = RecentECHashes(capacity: 4_096)
        #expect(!table.contains(hash(1)))
        for n in 1...4_096 { table.insert(hash(n)) }
        // Slots for twice the capacity, in buckets of four picked by a seeded hash: a key leaves
        // once four newer ones landed in its bucket. The bounds are far from what a seed can make
        // of them (about 99 % of all, and all but one in thousands of the newest, are held).
        #expect((1...4_096).filter { table.contains(hash($0)) }.count > 3_800)
        #expect((3_585...4_096).filter { table.contains(hash($0)) }.count > 500)
        // Twenty capacities later every bucket took far more than four newer keys.
        for n in 4_097...86_016 { table.insert(hash(n)) }
        #expect((1...1_024).allSatisfy { !table.contains(hash($0)) })
        #expect(!table.contains(hash(90_000)))
    }
}
