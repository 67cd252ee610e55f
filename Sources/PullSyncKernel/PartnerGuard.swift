import Synchronization

/// When a partner's circuit opens and how it recovers.
public struct CircuitBreakerPolicy: Sendable, Hashable {
    /// Consecutive failures that open the circuit. Default 5.
    public var failureThreshold: Int
    /// How long the circuit stays open before one probe is let through. Default 30 s.
    public var openDuration: Duration

    public init(failureThreshold: Int = 5, openDuration: Duration = .seconds(30)) {
        self.failureThreshold = failureThreshold
        self.openDuration = openDuration
    }
}

/// Per-process protection of each partner: a circuit breaker and an optional
/// calls-per-second budget (a token bucket holding at most one second of calls).
public final class PartnerGuard: Sendable {
    private enum Circuit {
        case closed(consecutiveFailures: Int)
        case open(until: Timestamp)
        case halfOpen(probeInFlight: Bool)
    }

    private struct State {
        var circuit: Circuit = .closed(consecutiveFailures: 0)
        var tokens: Double
        var refilledAt: Timestamp?
    }

    private final class Slot: Sendable {
        let state: Mutex<State>
        let budget: Double?
        init(budget: Double?) {
            self.budget = budget
            self.state = Mutex(State(tokens: budget.map { max($0, 1) } ?? 0))
        }
    }

    private let slots: [Slot]
    private let policy: CircuitBreakerPolicy

    /// One slot per partner, in registry order; `budgets[i]` is partner `i`'s calls per second.
    public init(budgets: [Double?], policy: CircuitBreakerPolicy = CircuitBreakerPolicy()) {
        self.slots = budgets.map { Slot(budget: $0) }
        self.policy = policy
    }

    /// Whether partner `index` may be called at `now`, taking a budget token and, when the
    /// circuit is half open, the single probe slot. `nil` means admitted.
    public func admit(_ index: Int, at now: Timestamp) -> SkipReason? {
        check(index, at: now, consume: true)
    }

    /// Like ``admit(_:at:)`` but changes nothing (for `explain`).
    public func peek(_ index: Int, at now: Timestamp) -> SkipReason? {
        check(index, at: now, consume: false)
    }

    /// Gives back what ``admit(_:at:)`` took, for a call that was not sent after all.
    public func refund(_ index: Int) {
        let slot = slots[index]
        slot.state.withLock { state in
            if let budget = slot.budget { state.tokens = min(state.tokens + 1, max(budget, 1)) }
            if case .halfOpen = state.circuit { state.circuit = .halfOpen(probeInFlight: false) }
        }
    }

    /// Records a finished call: a failure counts toward opening the circuit; a success closes it.
    public func record(_ index: Int, failed: Bool, at now: Timestamp) {
        let threshold = policy.failureThreshold
        let openDuration = policy.openDuration
        slots[index].state.withLock { state in
            switch (state.circuit, failed) {
            case (_, false):
                state.circuit = .closed(consecutiveFailures: 0)
            case (.closed(let failures), true):
                state.circuit =
                    failures + 1 >= threshold
                    ? .open(until: now + openDuration) : .closed(consecutiveFailures: failures + 1)
            case (.halfOpen, true), (.open, true):
                state.circuit = .open(until: now + openDuration)
            }
        }
    }

    /// Whether partner `index`'s circuit is open at `now` (for health and metrics).
    public func isOpen(_ index: Int, at now: Timestamp) -> Bool {
        slots[index].state.withLock { state in
            if case .open(let until) = state.circuit { return now < until }
            return false
        }
    }

    private func check(_ index: Int, at now: Timestamp, consume: Bool) -> SkipReason? {
        let slot = slots[index]
        return slot.state.withLock { state in
            switch state.circuit {
            case .closed:
                break
            case .open(let until):
                guard now >= until else { return .circuitOpen }
                if consume { state.circuit = .halfOpen(probeInFlight: false) }
            case .halfOpen(let probeInFlight):
                if probeInFlight { return .circuitOpen }
            }
            if let budget = slot.budget {
                let capacity = max(budget, 1)
                var tokens = state.tokens
                if let refilledAt = state.refilledAt {
                    tokens = min(capacity, tokens + max(0, (now - refilledAt).seconds) * budget)
                }
                guard tokens >= 1 else {
                    if consume {
                        state.tokens = tokens
                        state.refilledAt = now
                    }
                    return .budget
                }
                if consume {
                    state.tokens = tokens - 1
                    state.refilledAt = now
                }
            }
            if consume, case .halfOpen = state.circuit { state.circuit = .halfOpen(probeInFlight: true) }
            return nil
        }
    }
}
