import PullSyncKernel
import PullSyncTesting
import Synchronization
import Testing

/// `withDeadline`: the one "race the work against a timer" of the transport and the PostgreSQL store.
@Suite struct DeadlineTests {
    @Test("Work that ends in time gives its value, and the expiry hook never runs")
    func inTime() async throws {
        let expired = Atomic<Int>(0)
        let value = try await withDeadline(.seconds(3600), onExpiry: { expired.add(1, ordering: .relaxed) }) { 42 }
        let expiries = expired.load(ordering: .relaxed)
        #expect(value == 42)
        #expect(expiries == 0)
    }

    @Test("Work that ends with an error gives that error, not the deadline's")
    func ownError() async throws {
        struct Broken: Error {}
        await #expect(throws: Broken.self) {
            try await withDeadline(.seconds(3600)) { () async throws -> Int in throw Broken() }
        }
    }

    @Test("Work that never ends is cancelled at the deadline, which is the error")
    func cancelledAtTheDeadline() async throws {
        let gate = TestGate()  // never opened: the work waits for cancellation
        let error = await #expect(throws: DeadlineExceeded.self) {
            try await withDeadline(.milliseconds(10)) { () async throws -> Int in
                await withTaskCancellationHandler {
                    await gate.wait()
                } onCancel: {
                    gate.open()
                }
                try Task.checkCancellation()
                return 1
            }
        }
        #expect(error?.timeout == .milliseconds(10))
    }

    @Test("Work that ignores cancellation is ended by the expiry hook, once, and the call returns after it")
    func expiryHookEndsUncancellableWork() async throws {
        let gate = TestGate()
        let expired = Atomic<Int>(0)
        let ended = Atomic<Bool>(false)
        await #expect(throws: DeadlineExceeded.self) {
            try await withDeadline(
                .milliseconds(10),
                onExpiry: {
                    expired.add(1, ordering: .relaxed)
                    gate.open()  // as closing a connection ends a statement's wait
                }
            ) { () async throws -> Int in
                await gate.wait()  // ignores cancellation
                ended.store(true, ordering: .relaxed)
                return 0
            }
        }
        let expiries = expired.load(ordering: .relaxed)
        let workEnded = ended.load(ordering: .relaxed)
        #expect(expiries == 1)
        // Structured: the work had ended before `withDeadline` returned.
        #expect(workEnded)
    }
}
