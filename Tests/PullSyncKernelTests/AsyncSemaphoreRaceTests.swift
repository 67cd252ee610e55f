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
        var stuck = 0
        for iteration in 0..<3_000 {
            let semaphore = AsyncSemaphore(permits: 1)
            try await semaphore.acquire()
            let done = Flag()
            let entered = InstantBox()
            let waiter = Task.detached {
                entered.value.withLock { $0 = clock.now }
                try await semaphore.acquire()
                _ = done.setOnce()
            }
            var start: ContinuousClock.Instant?
            while start == nil {
                start = entered.value.withLock { $0 }
                if start == nil { await Task.yield() }
            }
            // Release at a varying point 0-975 ns after the waiter entered acquire().
            let until = start! + .nanoseconds(Int64(iteration % 40) * 25)
            while clock.now < until {}
            semaphore.release()
            let deadline = clock.now + .seconds(2)  // a hang guard, not a timing assertion
            while !done.isSet && clock.now < deadline { await Task.yield() }
            if !done.isSet {
                stuck += 1
                waiter.cancel()
                break
            }
        }
        #expect(stuck == 0)
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
            let processedAll = await eventually(within: .seconds(60)) { dispatcher.statistics.processed == 200 }
            #expect(processedAll, "round \(round): \(dispatcher.statistics.processed) of 200")
            dispatcher.beginShutdown()
            _ = await finishes(running)
            if !processedAll { break }
        }
    }
}
