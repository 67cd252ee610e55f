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

/// What ``PartnerGuard`` decided for one call.
public enum Admission: Sendable, Hashable {
    /// The call may go; `probe` when it is the half-open circuit's single probe.
    case admitted(probe: Bool)
    case refused(SkipReason)
}

/// Per-process protection of each partner: a circuit breaker, an optional calls-per-second
/// budget (a token bucket holding at most one second of calls), and a cap on the calls in
/// flight to one partner, so that a partner that hangs can't take every call slot.
///
/// Every admitted call must end in exactly one ``record(_:failed:probe:at:)`` (it was sent)
/// or ``refund(_:probe:)`` (it was not, or its outcome says nothing about the partner).
public final class PartnerGuard: Sendable {
    private enum Circuit {
        case closed(consecutiveFailures: Int)
        case open(until: Timestamp)
        /// `probeSince` is when the current probe was admitted, `nil` when none is out.
        case halfOpen(probeSince: Timestamp?)
    }

    private struct State {
        var circuit: Circuit = .closed(consecutiveFailures: 0)
        var tokens: Double
        var refilledAt: Timestamp?
        var inFlight = 0
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
    private let maxInFlightPerPartner: Int

    /// One slot per partner, in registry order; `budgets[i]` is partner `i`'s calls per second.
    public init(
        budgets: [Double?],
        policy: CircuitBreakerPolicy = CircuitBreakerPolicy(),
        maxInFlightPerPartner: Int = .max
    ) {
        self.slots = budgets.map { Slot(budget: $0) }
        self.policy = policy
        self.maxInFlightPerPartner = maxInFlightPerPartner
    }

    /// Whether partner `index` may be called at `now`, taking a budget token, an in-flight
    /// place and, when the circuit is half open, the single probe. `nil` means admitted.
    public func admit(_ index: Int, at now: Timestamp) -> SkipReason? {
        switch admission(index, at: now) {
        case .admitted: nil
        case .refused(let reason): reason
        }
    }

    /// Like ``admit(_:at:)``, saying whether the admitted call is the circuit's probe.
    public func admission(_ index: Int, at now: Timestamp) -> Admission {
        check(index, at: now, consume: true)
    }

    /// Like ``admit(_:at:)`` but changes nothing (for `explain`).
    public func peek(_ index: Int, at now: Timestamp) -> SkipReason? {
        switch check(index, at: now, consume: false) {
        case .admitted: nil
        case .refused(let reason): reason
        }
    }

    /// Gives back what an admission took, for a call that was not sent after all (or whose
    /// outcome says nothing about the partner). `probe` frees the half-open probe.
    public func refund(_ index: Int, probe: Bool = false) {
        let slot = slots[index]
        slot.state.withLock { state in
            if let budget = slot.budget { state.tokens = min(state.tokens + 1, max(budget, 1)) }
            state.inFlight = max(0, state.inFlight - 1)
            if probe, case .halfOpen = state.circuit { state.circuit = .halfOpen(probeSince: nil) }
        }
    }

    /// Records a finished call: a failure counts toward opening the circuit (or keeps an open
    /// one open); a success closes it. While half open, only the probe's failure reopens it.
    public func record(_ index: Int, failed: Bool, probe: Bool = false, at now: Timestamp) {
        let threshold = policy.failureThreshold
        let openDuration = policy.openDuration
        slots[index].state.withLock { state in
            state.inFlight = max(0, state.inFlight - 1)
            switch (state.circuit, failed) {
            case (_, false):
                state.circuit = .closed(consecutiveFailures: 0)
            case (.closed(let failures), true):
                state.circuit =
                    failures + 1 >= threshold
                    ? .open(until: now + openDuration) : .closed(consecutiveFailures: failures + 1)
            case (.open, true):
                state.circuit = .open(until: now + openDuration)
            case (.halfOpen, true):
                // Only the probe's failure reopens it; a late failure of an older call is old news.
                if probe { state.circuit = .open(until: now + openDuration) }
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

    /// Calls admitted to partner `index` and not yet recorded or refunded.
    public func inFlight(_ index: Int) -> Int {
        slots[index].state.withLock { $0.inFlight }
    }

    private func check(_ index: Int, at now: Timestamp, consume: Bool) -> Admission {
        let slot = slots[index]
        let openDuration = policy.openDuration
        let maxInFlight = maxInFlightPerPartner
        return slot.state.withLock { state in
            var probe = false
            switch state.circuit {
            case .closed:
                break
            case .open(let until):
                guard now >= until else { return .refused(.circuitOpen) }
                probe = true
            case .halfOpen(let probeSince):
                // A probe that never came back (a leak, a hung transport) expires after the
                // open duration, so the circuit can't stay shut for good.
                if let probeSince, now < probeSince + openDuration { return .refused(.circuitOpen) }
                probe = true
            }
            guard state.inFlight < maxInFlight else { return .refused(.partnerBusy) }
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
                    return .refused(.budget)
                }
                if consume {
                    state.tokens = tokens - 1
                    state.refilledAt = now
                }
            }
            if consume {
                state.inFlight += 1
                if probe { state.circuit = .halfOpen(probeSince: now) }
            }
            return .admitted(probe: probe)
        }
    }
}
