import Synchronization

/// A counting semaphore for tasks: ``acquire()`` suspends (never blocks a thread) while no
/// permit is free, and gives up with `CancellationError` when its task is cancelled.
/// Waiters are served first come, first served.
package final class AsyncSemaphore: Sendable {
    private struct State {
        var permits: Int
        var nextID: UInt64 = 0
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var waiterHead = 0
    }

    private let state: Mutex<State>

    package init(permits: Int) {
        self.state = Mutex(State(permits: permits))
    }

    package func acquire() async throws {
        let id: UInt64? = state.withLock { state in
            if state.permits > 0 {
                state.permits -= 1
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Next { case cancelled, acquired, wait }
                let next = state.withLock { state -> Next in
                    if Task.isCancelled { return .cancelled }
                    // A release may have come between deciding to wait and registering.
                    if state.permits > 0 {
                        state.permits -= 1
                        return .acquired
                    }
                    state.waiters.append((id, continuation))
                    return .wait
                }
                switch next {
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .acquired: continuation.resume()
                case .wait: break
                }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let position = state.waiters[state.waiterHead...].firstIndex(where: { $0.id == id }) else {
                    return nil
                }
                return state.waiters.remove(at: position).continuation
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    package func release() {
        let continuation = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            guard state.waiterHead < state.waiters.count else {
                state.permits += 1
                return nil
            }
            let next = state.waiters[state.waiterHead].continuation
            state.waiterHead += 1
            if state.waiterHead > 64 && state.waiterHead * 2 > state.waiters.count {
                state.waiters.removeFirst(state.waiterHead)
                state.waiterHead = 0
            }
            return next
        }
        continuation?.resume()
    }

    /// Permits free now (for tests and metrics).
    var availablePermits: Int { state.withLock { $0.permits } }
}
