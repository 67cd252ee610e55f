import Synchronization

/// One request's planned calls, shared by the lanes of its sliding window
/// (``PullKernel/execute(_:globalSlots:shouldStartMore:)``): each lane takes the next call
/// when its own ends, and the results are kept in the order the calls ended.
final class CallWindow: Sendable {
    private struct State {
        var next = 0
        var results: [CallResult] = []
    }

    private let calls: [PlannedCall]
    private let state: Mutex<State>

    init(_ calls: [PlannedCall]) {
        self.calls = calls
        var state = State()
        state.results.reserveCapacity(calls.count)
        self.state = Mutex(state)
    }

    /// The next call nobody has taken, if any.
    func next() -> PlannedCall? {
        let index: Int? = state.withLock { state in
            guard state.next < calls.count else { return nil }
            defer { state.next += 1 }
            return state.next
        }
        return index.map { calls[$0] }
    }

    func ended(_ result: CallResult) {
        state.withLock { $0.results.append(result) }
    }

    /// Once every lane has ended: the results, and the calls no lane took (shutdown).
    func finish() -> (results: [CallResult], unstarted: ArraySlice<PlannedCall>) {
        state.withLock { state in (state.results, calls[state.next...]) }
    }
}
