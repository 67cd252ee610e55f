import PullSyncKernel
import PullSyncTesting
import Synchronization
import Testing

/// Issue 17: pull sync gives way to pages. The dispatcher asks its governor before taking a
/// queued request, only while pages keep arriving.
@Suite("Load governor")
struct LoadGovernorTests {
    /// Holds every request until `room` opens; counts the asks.
    final class GatedGovernor: LoadGovernor {
        let room = TestGate()
        private let asks = Mutex(0)
        var count: Int { asks.withLock { $0 } }

        func waitForRoom() async -> Bool {
            asks.withLock { $0 += 1 }
            let waited = !room.isOpen
            _ = await room.waitUnlessCancelled()
            return waited
        }
    }

    @Test("While the governor gives no room, a queued request is not decided; once it does, it is, and counted")
    func holdsUntilRoom() async throws {
        let harness = try Harness(partners: partners(count: 2))
        let governor = GatedGovernor()
        let dispatcher = PullDispatcher(kernel: harness.kernel, governor: governor)
        #expect(dispatcher.submit(request(1, issued: true)) == .enqueued)
        let running = Task { await dispatcher.run() }

        #expect(await eventually { governor.count == 1 })
        #expect(dispatcher.statistics.processed == 0)
        #expect(harness.transport.records.isEmpty)

        governor.room.open()
        #expect(await eventually { dispatcher.statistics.processed == 1 })
        #expect(harness.transport.records.count == 2)
        #expect(dispatcher.statistics.gaveWay == 1)
        dispatcher.beginShutdown()
        await running.value
    }

    @Test("Requests queued with no page since are taken without asking; a new page asks again")
    func asksOnlyWhilePagesArrive() async throws {
        let harness = try Harness(partners: partners(count: 1))
        let governor = GatedGovernor()
        governor.room.open()
        let dispatcher = PullDispatcher(kernel: harness.kernel, governor: governor)
        for n in 1...3 { #expect(dispatcher.submit(request(n, issued: true)) == .enqueued) }
        let running = Task { await dispatcher.run() }

        #expect(await eventually { dispatcher.statistics.processed == 3 })
        #expect(governor.count == 1)
        #expect(dispatcher.statistics.gaveWay == 0)

        #expect(dispatcher.submit(request(4, issued: true)) == .enqueued)
        #expect(await eventually { dispatcher.statistics.processed == 4 })
        #expect(governor.count == 2)
        dispatcher.beginShutdown()
        await running.value
    }

    @Test("Shutdown while waiting for room: the request is dropped, never decided, and run() returns")
    func shutdownWhileWaiting() async throws {
        let harness = try Harness(partners: partners(count: 1))
        let governor = GatedGovernor()
        // The grace period ends at once: the wait for room is then cancelled.
        let dispatcher = PullDispatcher(kernel: harness.kernel, governor: governor, sleep: { _ in })
        #expect(dispatcher.submit(request(1, issued: true)) == .enqueued)
        let running = Task { await dispatcher.run() }

        #expect(await eventually { governor.count == 1 })
        dispatcher.beginShutdown()
        await running.value
        #expect(dispatcher.statistics.processed == 0)
        #expect(harness.transport.records.isEmpty)
    }
}
