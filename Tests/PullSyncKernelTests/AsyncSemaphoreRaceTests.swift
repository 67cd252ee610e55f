import PullSyncTesting
import Synchronization
import Testing

@testable import PullSyncKernel

/// Regression for a lost wakeup: a `release()` landing between a waiter's decision to wait
/// and its registration left a permit free while the waiter slept (found in review).
@Suite("AsyncSemaphore races")
struct AsyncSemaphoreRaceTests {
    final class InstantBox: Sendable {
        let value = Mutex<ContinuousClock.Instant?>(nil)
    }

    @Test("A release racing a waiter's registration always wakes it")
    func releaseRacingRegistration() async throws {
        let clock = ContinuousClock()
        for iteration in 0..<3_000 {
            let semaphore = AsyncSemaphore(permits: 1)
            try await semaphore.acquire()
            let entered = InstantBox()
            let waiter = Task.detached {
                entered.value.withLock { $0 = clock.now }
                try await semaphore.acquire()
            }
            // The waiter runs on another thread; wait (without a deadline) until it is inside acquire().
            var start: ContinuousClock.Instant?
            while start == nil {
                start = entered.value.withLock { $0 }
                if start == nil { await Task.yield() }
            }
            // Release at a varying point 0-975 ns after the waiter entered acquire(): a sweep over
            // the interleavings, not an ordering. Whichever one the machine produces, the waiter
            // must get the permit; nothing here depends on how fast anything runs.
            let until = start! + .nanoseconds(Int64(iteration % 40) * 25)
            while clock.now < until {}
            semaphore.release()
            // A lost wakeup leaves the waiter asleep for good: the hang guard (no timing
            // assertion) turns that into a failure instead of a hung run.
            let woke = await finishing(within: .seconds(300)) { try await waiter.value }
            guard case .success = woke else {
                Issue.record("iteration \(iteration): the waiter was not woken (\(String(describing: woke)))")
                waiter.cancel()
                return
            }
        }
    }

    @Test("With one call slot, a dispatcher processes every queued request")
    func dispatcherNeverStalls() async throws {
        for round in 0..<5 {
            let harness = try Harness(
                partners: partners(["a"]),
                configuration: PullSyncConfiguration(maxInFlightCalls: 1, queueCapacity: 4096)
            )
            let dispatcher = PullDispatcher(kernel: harness.kernel)
            let running = Task { await dispatcher.run() }
            for n in 1...200 { _ = dispatcher.submit(request(n + round * 1000, issued: true)) }
            // A generous hang guard (a stall never ends; a busy suite only slows this down).
            let processedAll = await eventually(within: .seconds(600)) { dispatcher.statistics.processed == 200 }
            #expect(processedAll, "round \(round): \(dispatcher.statistics.processed) of 200")
            dispatcher.beginShutdown()
            _ = await finishes(running)
            if !processedAll { break }
        }
    }
}
