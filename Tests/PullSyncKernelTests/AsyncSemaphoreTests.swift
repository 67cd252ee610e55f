import Testing

@testable import PullSyncKernel

/// The semaphore behind the dispatcher's global caps: permits, first come first served,
/// cancellation of a waiter.
///
/// Waiters are started with `Task.immediate`, which runs the task on the caller's thread up to
/// its first suspension: when it returns, the waiter is queued, so the order is deterministic.
@Suite("AsyncSemaphore")
struct AsyncSemaphoreTests {
    @Test("Acquire takes a permit while one is free, then waits until a release")
    func permits() async throws {
        let semaphore = AsyncSemaphore(permits: 2)
        try await semaphore.acquire()
        try await semaphore.acquire()
        #expect(semaphore.availablePermits == 0)

        let acquired = Flag()
        let waiter = Task.immediate {
            try await semaphore.acquire()
            _ = acquired.setOnce()
        }
        #expect(!acquired.isSet)
        #expect(semaphore.availablePermits == 0)

        semaphore.release()
        try await waiter.value
        #expect(acquired.isSet)
        #expect(semaphore.availablePermits == 0)

        semaphore.release()
        semaphore.release()
        #expect(semaphore.availablePermits == 2)
    }

    @Test("Waiters are served first come, first served")
    func fifo() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        try await semaphore.acquire()
        let order = Box<[Int]>([])

        let waiters = (0..<8).map { id in
            Task.immediate {
                try await semaphore.acquire()
                order.update { $0.append(id) }
                semaphore.release()
            }
        }
        #expect(order.value.isEmpty)
        semaphore.release()
        for waiter in waiters { try await waiter.value }

        #expect(order.value == Array(0..<8))
        #expect(semaphore.availablePermits == 1)
    }

    @Test("A cancelled waiter gives up with CancellationError and its turn passes to the next")
    func cancelledWaiter() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        try await semaphore.acquire()
        let cancelled = Task.immediate { try await semaphore.acquire() }
        let next = Task.immediate {
            try await semaphore.acquire()
            semaphore.release()
        }

        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(semaphore.availablePermits == 0)

        semaphore.release()
        try await next.value
        #expect(semaphore.availablePermits == 1)
    }

    @Test("A task already cancelled doesn't wait for a permit")
    func alreadyCancelled() async throws {
        let semaphore = AsyncSemaphore(permits: 1)
        try await semaphore.acquire()

        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await semaphore.acquire()
        }

        await #expect(throws: CancellationError.self) { try await task.value }
        semaphore.release()
        #expect(semaphore.availablePermits == 1)
    }

    @Test("Many tasks contending never hold more permits than exist")
    func contention() async throws {
        let semaphore = AsyncSemaphore(permits: 3)
        let holders = Box((now: 0, peak: 0))

        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask {
                    try await semaphore.acquire()
                    holders.update {
                        $0.now += 1
                        $0.peak = max($0.peak, $0.now)
                    }
                    await Task.yield()
                    holders.update { $0.now -= 1 }
                    semaphore.release()
                }
            }
            try await group.waitForAll()
        }

        #expect(holders.value.peak <= 3)
        #expect(holders.value.now == 0)
        #expect(semaphore.availablePermits == 3)
    }
}
