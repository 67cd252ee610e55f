import Synchronization

/// Holds callers of ``wait()`` until the test calls ``open()``; later callers pass at once.
///
/// Tests order events with gates: a scripted partner held on a gate answers exactly when the test
/// opens it, however busy the machine is.
public final class TestGate: Sendable {
    private struct State {
        var open = false
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
    }

    private let state = Mutex(State())

    /// Creates a closed gate.
    public init() {}

    /// Whether ``open()`` has been called.
    public var isOpen: Bool { state.withLock { $0.open } }

    /// Waits until the gate opens, even if the calling task is cancelled (see ``waitUnlessCancelled()``).
    public func wait() async {
        let id = newID()
        _ = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let passes: Bool = state.withLock { (state: inout State) -> Bool in
                if state.open { return true }
                state.waiters[id] = continuation
                return false
            }
            if passes { continuation.resume(returning: true) }
        }
    }

    /// Waits until the gate opens or the calling task is cancelled; returns whether it opened.
    public func waitUnlessCancelled() async -> Bool {
        let id = newID()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let answer: Bool? = state.withLock { (state: inout State) -> Bool? in
                    if state.open { return true }
                    if Task.isCancelled { return false }
                    state.waiters[id] = continuation
                    return nil
                }
                if let answer { continuation.resume(returning: answer) }
            }
        } onCancel: {
            let waiter: CheckedContinuation<Bool, Never>? = state.withLock { (state: inout State) in
                state.waiters.removeValue(forKey: id)
            }
            waiter?.resume(returning: false)
        }
    }

    /// Opens the gate: every waiter goes on, and later callers pass at once.
    public func open() {
        let waiters: [CheckedContinuation<Bool, Never>] = state.withLock { (state: inout State) in
            state.open = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    private func newID() -> Int {
        state.withLock { (state: inout State) -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
    }
}
