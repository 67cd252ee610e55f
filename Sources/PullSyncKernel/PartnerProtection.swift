import Synchronization

/// When a partner's circuit opens, how it recovers, and how long a partner may pause itself.
public struct CircuitBreakerPolicy: Sendable, Hashable {
    /// Consecutive failures that open the circuit. Default 5.
    public var failureThreshold: Int
    /// How long the circuit stays open before one probe is let through. Default 30 s.
    public var openDuration: Duration
    /// The second way to open: too many failures among recent calls, for a partner that fails
    /// often without failing five times in a row. Default ``ErrorRateRule/init(threshold:window:minimumCalls:)``
    /// (half of at least 20 calls in 60 s); `nil` turns it off.
    public var errorRate: ErrorRateRule?
    /// The longest pause a partner's `429`/`503` `Retry-After` is honoured for. A longer one is cut
    /// to this, so a partner (or whatever answers in its name) can't switch itself off for a year
    /// until the next restart. Default 5 minutes.
    public var maxPause: Duration

    /// Creates a policy; every default is the one documented on its property.
    ///
    /// A `failureThreshold` below 1 or a negative `maxPause` is a programming error.
    public init(
        failureThreshold: Int = 5,
        openDuration: Duration = .seconds(30),
        errorRate: ErrorRateRule? = ErrorRateRule(),
        maxPause: Duration = .seconds(300)
    ) {
        precondition(failureThreshold >= 1, "failureThreshold must be at least 1")
        precondition(maxPause >= .zero, "maxPause must not be negative")
        self.failureThreshold = failureThreshold
        self.openDuration = openDuration
        self.errorRate = errorRate
        self.maxPause = maxPause
    }
}

/// Opens a partner's circuit when at least `threshold` of its calls in the last `window`
/// failed, once there were at least `minimumCalls` of them (a few calls prove nothing).
public struct ErrorRateRule: Sendable, Hashable {
    /// The failing share, in `(0, 1]`, that opens the circuit. Default 0.5.
    public var threshold: Double
    /// How far back calls count; kept in ten buckets, so it slides in tenths. Default 60 s.
    public var window: Duration
    /// The fewest calls in the window for the rate to count. Default 20.
    public var minimumCalls: Int

    /// Creates a rule; the defaults open the circuit when half of at least 20 calls in 60 s failed.
    ///
    /// A `threshold` outside `(0, 1]`, a `window` that is not positive or a `minimumCalls` below 1
    /// is a programming error.
    public init(threshold: Double = 0.5, window: Duration = .seconds(60), minimumCalls: Int = 20) {
        precondition(threshold > 0 && threshold <= 1, "threshold must be in (0, 1]")
        precondition(window > .zero, "window must be positive")
        precondition(minimumCalls >= 1, "minimumCalls must be at least 1")
        self.threshold = threshold
        self.window = window
        self.minimumCalls = minimumCalls
    }
}

/// What ``PartnerProtection`` decided for one call.
package enum Admission: Sendable, Hashable {
    /// The call may go; `probe` when it is the half-open circuit's single probe.
    case admitted(probe: Bool)
    case refused(SkipReason)
}

/// How a partner's circuit changed when a call's end was recorded (for the log).
package enum CircuitChange: Sendable, Hashable {
    /// Opened after this many consecutive failures.
    case openedByConsecutiveFailures(Int)
    /// Opened because `failures` of the last `calls` calls in the window failed.
    case openedByErrorRate(failures: Int, calls: Int)
    /// A failed probe opened it again.
    case reopened
    /// A successful call closed an open or half-open circuit.
    case closed
}

/// A partner's protection state, for health and `explain`.
package enum ProtectionState: Sendable, Hashable {
    case closed
    /// Open until the given time, then one probe goes.
    case open(until: Timestamp)
    /// Open duration over: the next call (or the one out now) is the probe.
    case halfOpen
    /// The partner asked for a pause (`Retry-After`) that lasts until the given time.
    case paused(until: Timestamp)
}

/// One partner's protection in this process: a circuit breaker (consecutive failures or an error
/// rate over a window open it; after the open duration one probe goes; a success closes it), a
/// pause the partner asks for with `429`/`503` and `Retry-After`, an optional calls-per-second
/// budget (a token bucket holding at most one second of calls), and a cap on the calls in flight
/// to the partner, so that a partner that hangs can't take every call slot.
///
/// Every admitted call must end in exactly one ``record(failed:probe:at:)`` (it was sent and
/// answered), ``pause(for:probe:at:)`` (it was answered with a pause) or ``refund(probe:)``
/// (it was not sent, or its outcome says nothing about the partner).
package final class PartnerProtection: Sendable {
    private enum Circuit {
        case closed(consecutiveFailures: Int)
        case open(until: Timestamp)
        /// `probeSince` is when the current probe was admitted, `nil` when none is out.
        case halfOpen(probeSince: Timestamp?)
    }

    private struct State {
        var circuit: Circuit = .closed(consecutiveFailures: 0)
        var recent = OutcomeWindow()
        var pausedUntil: Timestamp?
        var tokens: Double
        var refilledAt: Timestamp?
        var inFlight = 0
        var sendLog = SendLog()

        /// The budget's tokens at `now`: refilled at `budget` per second since the last
        /// refill, up to one second of calls.
        func tokens(at now: Timestamp, budget: Double) -> Double {
            guard let refilledAt else { return tokens }
            return min(max(budget, 1), tokens + max(0, (now - refilledAt).seconds) * budget)
        }
    }

    private let state: Mutex<State>
    /// Calls per second, or `nil` for no budget.
    package let budget: Double?
    /// The budget as a sliding window of send times.
    private let window: SharedBudget?
    private let policy: CircuitBreakerPolicy
    private let maxInFlight: Int

    package init(budget: Double?, policy: CircuitBreakerPolicy = CircuitBreakerPolicy(), maxInFlight: Int = .max) {
        self.budget = budget
        self.window = budget.map { SharedBudget(partnerID: "", perSecond: $0) }
        self.policy = policy
        self.maxInFlight = maxInFlight
        self.state = Mutex(State(tokens: budget.map { max($0, 1) } ?? 0))
    }

    /// The protection of the same partner after a reload that gives it `budget`: this very
    /// object when the budget is unchanged (circuit, pause, budget, send log and calls in flight
    /// carry over, shared with calls still in flight on the old partners), else a new one that
    /// keeps the circuit and pause and starts its budget afresh.
    package func carried(toBudget budget: Double?) -> PartnerProtection {
        if budget == self.budget { return self }
        let fresh = PartnerProtection(budget: budget, policy: policy, maxInFlight: maxInFlight)
        let (circuit, recent, pausedUntil) = state.withLock { ($0.circuit, $0.recent, $0.pausedUntil) }
        fresh.state.withLock { state in
            state.circuit = circuit
            state.recent = recent
            state.pausedUntil = pausedUntil
        }
        return fresh
    }

    /// Whether the partner may be called at `now`, taking a budget token, an in-flight place
    /// and, when the circuit is half open, the single probe. `nil` means admitted.
    package func admit(at now: Timestamp) -> SkipReason? {
        switch admission(at: now) {
        case .admitted: nil
        case .refused(let reason): reason
        }
    }

    /// Like ``admit(at:)``, saying whether the admitted call is the circuit's probe.
    package func admission(at now: Timestamp) -> Admission {
        check(at: now, consume: true)
    }

    /// Like ``admit(at:)`` but changes nothing (for `explain`).
    package func peek(at now: Timestamp) -> SkipReason? {
        switch check(at: now, consume: false) {
        case .admitted: nil
        case .refused(let reason): reason
        }
    }

    /// Whether a call could be admitted at `now` with room to spare: no pause, a closed circuit
    /// (no probe to wait for), and at least `margin` in-flight places and budget tokens free
    /// beyond the call's own. Takes nothing.
    package func hasRoom(at now: Timestamp, margin: Int) -> Bool {
        let maxInFlight = maxInFlight
        let budget = budget
        return state.withLock { state in
            if let until = state.pausedUntil, now < until { return false }
            guard case .closed = state.circuit else { return false }
            guard state.inFlight < maxInFlight - margin else { return false }
            guard let budget else { return true }
            return state.tokens(at: now, budget: budget) >= Double(1 + margin)
        }
    }

    /// Gives back what an admission took, for a call that was not sent after all (or whose
    /// outcome says nothing about the partner). `probe` frees the half-open probe.
    package func refund(probe: Bool = false) {
        let budget = budget
        state.withLock { state in
            if let budget { state.tokens = min(state.tokens + 1, max(budget, 1)) }
            state.inFlight = max(0, state.inFlight - 1)
            if probe, case .halfOpen = state.circuit { state.circuit = .halfOpen(probeSince: nil) }
        }
    }

    /// Records a finished call: a failure counts toward opening the circuit (or keeps an open
    /// one open); a success closes it. While half open, only the probe's failure reopens it.
    /// Returns how the circuit changed, if it did.
    @discardableResult
    package func record(failed: Bool, probe: Bool = false, at now: Timestamp) -> CircuitChange? {
        let policy = policy
        return state.withLock { state -> CircuitChange? in
            state.inFlight = max(0, state.inFlight - 1)
            switch (state.circuit, failed) {
            case (.closed, false):
                state.circuit = .closed(consecutiveFailures: 0)
                if let rule = policy.errorRate { state.recent.add(failed: false, at: now, rule: rule) }
                return nil
            case (_, false):
                state.circuit = .closed(consecutiveFailures: 0)
                state.recent = OutcomeWindow()
                return .closed
            case (.closed(let failures), true):
                if failures + 1 >= policy.failureThreshold {
                    state.circuit = .open(until: now + policy.openDuration)
                    state.recent = OutcomeWindow()
                    return .openedByConsecutiveFailures(failures + 1)
                }
                state.circuit = .closed(consecutiveFailures: failures + 1)
                guard let rule = policy.errorRate else { return nil }
                state.recent.add(failed: true, at: now, rule: rule)
                let (calls, failed) = state.recent.totals(at: now, rule: rule)
                guard calls >= rule.minimumCalls, Double(failed) >= rule.threshold * Double(calls) else { return nil }
                state.circuit = .open(until: now + policy.openDuration)
                state.recent = OutcomeWindow()
                return .openedByErrorRate(failures: failed, calls: calls)
            case (.open, true):
                state.circuit = .open(until: now + policy.openDuration)
                return nil
            case (.halfOpen, true):
                // Only the probe's failure reopens it; a late failure of an older call is old news.
                guard probe else { return nil }
                state.circuit = .open(until: now + policy.openDuration)
                return .reopened
            }
        }
    }

    /// Records a call the partner answered with a pause (`429`/`503` with `Retry-After`): no
    /// call goes to the partner until `now + delay`, `delay` cut to the policy's `maxPause`. The
    /// answer is neither a failure nor a success for the circuit; a probe answered so is freed,
    /// and the next call after the pause probes again. Returns when the pause ends.
    @discardableResult
    package func pause(for delay: Duration, probe: Bool = false, at now: Timestamp) -> Timestamp {
        let until = now + min(max(delay, .zero), policy.maxPause)
        return state.withLock { state in
            state.inFlight = max(0, state.inFlight - 1)
            if probe, case .halfOpen = state.circuit { state.circuit = .halfOpen(probeSince: nil) }
            let end = max(state.pausedUntil ?? until, until)
            state.pausedUntil = end
            return end
        }
    }

    /// Takes a place for a call about to be sent at `now`: `false` when the partner's budget
    /// already saw as many sends in the window before `now` (always `true` without a budget).
    /// The budget as send times, exact in any window, whatever the queueing between admission
    /// and sending. A budget of 20/s or more is also spread out: at most a tenth of it (rounded
    /// up) in any tenth of the window, so that a flood's calls don't all go at the start of each
    /// second, where any delay on the way would bunch two seconds' calls.
    package func takeSendSlot(at now: Timestamp) -> Bool {
        guard let window else { return true }
        return state.withLock { state in state.sendLog.take(at: now, budget: window) }
    }

    /// Whether the circuit is open at `now` (for health and metrics).
    package func isOpen(at now: Timestamp) -> Bool {
        state.withLock { state in
            if case .open(let until) = state.circuit { return now < until }
            return false
        }
    }

    /// The protection state at `now`: a pause shows first, then the circuit.
    package func state(at now: Timestamp) -> ProtectionState {
        state.withLock { state in
            if let until = state.pausedUntil, now < until { return .paused(until: until) }
            switch state.circuit {
            case .closed: return .closed
            case .open(let until): return now < until ? .open(until: until) : .halfOpen
            case .halfOpen: return .halfOpen
            }
        }
    }

    /// Calls admitted and not yet recorded or refunded.
    package var callsInFlight: Int {
        state.withLock { $0.inFlight }
    }

    private func check(at now: Timestamp, consume: Bool) -> Admission {
        let openDuration = policy.openDuration
        let maxInFlight = maxInFlight
        let budget = budget
        return state.withLock { state in
            if let until = state.pausedUntil {
                guard now >= until else { return .refused(.partnerPaused) }
                if consume { state.pausedUntil = nil }
            }
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
            if let budget {
                let tokens = state.tokens(at: now, budget: budget)
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

/// Calls and failures in the last error-rate window, in ten buckets of a tenth of it each.
private struct OutcomeWindow {
    private struct Bucket {
        var number: Int64 = .min
        var calls = 0
        var failures = 0
    }

    private static let bucketCount = 10
    private var buckets = [Bucket](repeating: Bucket(), count: bucketCount)

    private static func width(_ rule: ErrorRateRule) -> Int64 {
        max(1, rule.window.nanoseconds / Int64(bucketCount))
    }

    private static func number(_ now: Timestamp, _ rule: ErrorRateRule) -> Int64 {
        let width = width(rule)
        let ns = now.nanosecondsSinceEpoch
        return ns >= 0 ? ns / width : (ns - width + 1) / width
    }

    mutating func add(failed: Bool, at now: Timestamp, rule: ErrorRateRule) {
        let number = Self.number(now, rule)
        let slot = Int(((number % Int64(Self.bucketCount)) + Int64(Self.bucketCount)) % Int64(Self.bucketCount))
        if buckets[slot].number != number { buckets[slot] = Bucket(number: number) }
        buckets[slot].calls += 1
        if failed { buckets[slot].failures += 1 }
    }

    func totals(at now: Timestamp, rule: ErrorRateRule) -> (calls: Int, failures: Int) {
        let current = Self.number(now, rule)
        var calls = 0
        var failures = 0
        for bucket in buckets where bucket.number <= current && bucket.number > current - Int64(Self.bucketCount) {
            calls += bucket.calls
            failures += bucket.failures
        }
        return (calls, failures)
    }
}

/// The last sends to a partner with a budget: enough of them to check the budget's window and,
/// for budgets of 20 and more, its tenth.
struct SendLog {
    /// Send times, oldest first once full (a ring starting at `next`).
    private var times: [Timestamp] = []
    private var next = 0

    /// A budget over this is kept per this many calls (bounded memory).
    static let maxCalls = 100_000

    /// Calls allowed in a tenth of the window, when the budget is spread; `nil` when it isn't.
    static func perTenth(_ budget: SharedBudget) -> Int? {
        budget.calls >= 20 ? (budget.calls + 9) / 10 : nil
    }

    mutating func take(at now: Timestamp, budget: SharedBudget) -> Bool {
        let calls = min(budget.calls, Self.maxCalls)
        let span = calls == budget.calls ? budget.window : budget.window * (Double(calls) / Double(budget.calls))
        if times.count == calls, times[next] > now - span { return false }
        if let perTenth = Self.perTenth(budget), times.count >= perTenth {
            // The perTenth-th most recent send must have left the last tenth of the window.
            let position = (next + times.count - perTenth) % times.count
            if times[position] > now - span / 10 { return false }
        }
        if times.count < calls {
            times.append(now)
        } else {
            times[next] = now
            next = (next + 1) % calls
        }
        return true
    }
}
