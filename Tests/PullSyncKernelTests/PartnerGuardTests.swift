import PullSyncKernel
import Testing

/// The per-process partner protection on its own: circuit breaker states and the
/// calls-per-second token bucket.
@Suite("Partner guard")
struct PartnerGuardTests {
    let t0 = Timestamp(secondsSinceEpoch: 1_000)

    @Test("Five consecutive failures open the circuit for 30 s, then one probe is let through")
    func circuitOpensAndProbes() {
        let guardian = PartnerGuard(budgets: [nil])
        for _ in 0..<4 { guardian.record(0, failed: true, at: t0) }
        #expect(guardian.admit(0, at: t0) == nil)
        #expect(!guardian.isOpen(0, at: t0))

        guardian.record(0, failed: true, at: t0)
        #expect(guardian.isOpen(0, at: t0))
        #expect(guardian.admit(0, at: t0) == .circuitOpen)
        #expect(guardian.admit(0, at: t0 + .seconds(30) - .nanoseconds(1)) == .circuitOpen)

        #expect(!guardian.isOpen(0, at: t0 + .seconds(30)))
        #expect(guardian.admit(0, at: t0 + .seconds(30)) == nil)
        #expect(guardian.admit(0, at: t0 + .seconds(30)) == .circuitOpen)
        #expect(guardian.admit(0, at: t0 + .seconds(60) - .nanoseconds(1)) == .circuitOpen)
        // A probe that never comes back expires after the open duration: the circuit can't wedge.
        #expect(guardian.admit(0, at: t0 + .seconds(60)) == nil)
    }

    @Test("A late failure of a call sent before the circuit opened doesn't reopen a half-open circuit")
    func lateFailureIsOldNews() {
        let guardian = PartnerGuard(budgets: [nil])
        for _ in 0..<5 { guardian.record(0, failed: true, at: t0) }
        #expect(guardian.admission(0, at: t0 + .seconds(30)) == .admitted(probe: true))
        guardian.record(0, failed: true, probe: false, at: t0 + .seconds(31))
        #expect(!guardian.isOpen(0, at: t0 + .seconds(31)))
        guardian.record(0, failed: false, probe: true, at: t0 + .seconds(31))
        #expect(guardian.admission(0, at: t0 + .seconds(31)) == .admitted(probe: false))
    }

    @Test("The in-flight cap refuses a partner's calls beyond it until one ends")
    func inFlightCap() {
        let guardian = PartnerGuard(budgets: [nil, nil], maxInFlightPerPartner: 2)
        #expect(guardian.admit(0, at: t0) == nil)
        #expect(guardian.admit(0, at: t0) == nil)
        #expect(guardian.admit(0, at: t0) == .partnerBusy)
        #expect(guardian.admit(1, at: t0) == nil)
        #expect(guardian.inFlight(0) == 2)
        guardian.record(0, failed: true, at: t0)
        #expect(guardian.admit(0, at: t0) == nil)
        guardian.refund(0)
        guardian.refund(0)
        #expect(guardian.inFlight(0) == 0)
    }

    @Test("A successful probe closes the circuit; a failed one reopens it for another 30 s")
    func probeOutcome() {
        let closing = PartnerGuard(budgets: [nil])
        let reopening = PartnerGuard(budgets: [nil])
        for guardian in [closing, reopening] {
            for _ in 0..<5 { guardian.record(0, failed: true, at: t0) }
            #expect(guardian.admit(0, at: t0 + .seconds(30)) == nil)
        }

        closing.record(0, failed: false, at: t0 + .seconds(31))
        #expect(closing.admit(0, at: t0 + .seconds(31)) == nil)
        #expect(closing.admit(0, at: t0 + .seconds(31)) == nil)
        // Closed again from zero: four failures don't reopen it.
        for _ in 0..<4 { closing.record(0, failed: true, at: t0 + .seconds(32)) }
        #expect(closing.admit(0, at: t0 + .seconds(32)) == nil)

        reopening.record(0, failed: true, probe: true, at: t0 + .seconds(31))
        #expect(reopening.isOpen(0, at: t0 + .seconds(31)))
        #expect(reopening.admit(0, at: t0 + .seconds(60)) == .circuitOpen)
        #expect(reopening.admit(0, at: t0 + .seconds(61)) == nil)
        #expect(reopening.admit(0, at: t0 + .seconds(61)) == .circuitOpen)
    }

    @Test("A success resets the count of consecutive failures")
    func successResetsCount() {
        let guardian = PartnerGuard(budgets: [nil])
        for _ in 0..<4 { guardian.record(0, failed: true, at: t0) }
        guardian.record(0, failed: false, at: t0)
        for _ in 0..<4 { guardian.record(0, failed: true, at: t0) }
        #expect(!guardian.isOpen(0, at: t0))
        guardian.record(0, failed: true, at: t0)
        #expect(guardian.isOpen(0, at: t0))
    }

    @Test("The policy's threshold and open duration are honoured")
    func customPolicy() {
        let guardian = PartnerGuard(
            budgets: [nil, nil],
            policy: CircuitBreakerPolicy(failureThreshold: 2, openDuration: .seconds(5))
        )
        guardian.record(1, failed: true, at: t0)
        guardian.record(1, failed: true, at: t0)
        #expect(guardian.admit(1, at: t0 + .seconds(4)) == .circuitOpen)
        #expect(guardian.admit(0, at: t0 + .seconds(4)) == nil)
        #expect(guardian.admit(1, at: t0 + .seconds(5)) == nil)
        #expect(CircuitBreakerPolicy() == CircuitBreakerPolicy(failureThreshold: 5, openDuration: .seconds(30)))
    }

    @Test("Refunding an unsent probe lets the next request probe")
    func refundProbe() {
        let guardian = PartnerGuard(budgets: [nil])
        for _ in 0..<5 { guardian.record(0, failed: true, at: t0) }
        #expect(guardian.admit(0, at: t0 + .seconds(30)) == nil)
        guardian.refund(0, probe: true)
        #expect(guardian.admit(0, at: t0 + .seconds(30)) == nil)
        #expect(guardian.admit(0, at: t0 + .seconds(30)) == .circuitOpen)
    }

    @Test("peek answers like admit but takes neither the probe nor a token")
    func peekChangesNothing() {
        let guardian = PartnerGuard(budgets: [1])
        for _ in 0..<5 { guardian.record(0, failed: true, at: t0) }
        let probeTime = t0 + .seconds(30)
        #expect(guardian.peek(0, at: t0) == .circuitOpen)
        #expect(guardian.peek(0, at: probeTime) == nil)
        #expect(guardian.peek(0, at: probeTime) == nil)
        #expect(guardian.admit(0, at: probeTime) == nil)
        #expect(guardian.peek(0, at: probeTime) == .circuitOpen)
    }

    @Test("A budget of 2 per second admits two calls per second of clock and refills")
    func budget() {
        let guardian = PartnerGuard(budgets: [2, nil])
        #expect(guardian.admit(0, at: t0) == nil)
        #expect(guardian.admit(0, at: t0) == nil)
        #expect(guardian.admit(0, at: t0) == .budget)
        #expect(guardian.admit(0, at: t0 + .milliseconds(250)) == .budget)
        #expect(guardian.admit(0, at: t0 + .milliseconds(500)) == nil)
        #expect(guardian.admit(0, at: t0 + .milliseconds(500)) == .budget)
        // A long pause refills to one second's worth, no more.
        #expect(guardian.admit(0, at: t0 + .seconds(60)) == nil)
        #expect(guardian.admit(0, at: t0 + .seconds(60)) == nil)
        #expect(guardian.admit(0, at: t0 + .seconds(60)) == .budget)
        // No budget, no limit.
        #expect((0..<1000).allSatisfy { _ in guardian.admit(1, at: t0) == nil })
    }

    @Test("A fractional budget allows one call, then one per 1/budget seconds")
    func fractionalBudget() {
        let guardian = PartnerGuard(budgets: [0.5])
        #expect(guardian.admit(0, at: t0) == nil)
        #expect(guardian.admit(0, at: t0 + .seconds(1)) == .budget)
        #expect(guardian.admit(0, at: t0 + .seconds(2)) == nil)
        #expect(guardian.admit(0, at: t0 + .seconds(2)) == .budget)
    }

    @Test("Refunding gives a budget token back, up to the bucket's capacity")
    func refundBudget() {
        let guardian = PartnerGuard(budgets: [2])
        #expect(guardian.admit(0, at: t0) == nil)
        #expect(guardian.admit(0, at: t0) == nil)
        guardian.refund(0)
        #expect(guardian.admit(0, at: t0) == nil)
        #expect(guardian.admit(0, at: t0) == .budget)
        guardian.refund(0)
        guardian.refund(0)
        guardian.refund(0)
        #expect(guardian.admit(0, at: t0) == nil)
        #expect(guardian.admit(0, at: t0) == nil)
        #expect(guardian.admit(0, at: t0) == .budget)
    }
}

/// The second way a circuit opens (an error rate over a window) and pauses a partner asks for.
@Suite("Partner guard: error rate and pauses")
struct PartnerGuardErrorRateTests {
    let t0 = Timestamp(secondsSinceEpoch: 1_000)

    /// Records `failures` failures and `successes` successes, interleaved so that no run of
    /// consecutive failures reaches the threshold.
    func interleave(_ guardian: PartnerGuard, failures: Int, successes: Int, at time: Timestamp) -> [CircuitChange] {
        var changes: [CircuitChange] = []
        var (f, s) = (failures, successes)
        while f > 0 || s > 0 {
            if f > 0 {
                f -= 1
                if let change = guardian.record(0, failed: true, at: time) { changes.append(change) }
            }
            if s > 0 {
                s -= 1
                if let change = guardian.record(0, failed: false, at: time) { changes.append(change) }
            }
        }
        return changes
    }

    @Test("Half of 20 calls in the window failing opens the circuit, with no run of 5 failures")
    func errorRateOpens() {
        let guardian = PartnerGuard(budgets: [nil])
        // 9 of 19: under the minimum count; the 10th failure makes 10 of 20.
        #expect(interleave(guardian, failures: 9, successes: 10, at: t0).isEmpty)
        #expect(guardian.admit(0, at: t0) == nil)
        guardian.refund(0)
        #expect(guardian.record(0, failed: true, at: t0) == .openedByErrorRate(failures: 10, calls: 20))
        #expect(guardian.admit(0, at: t0 + .seconds(1)) == .circuitOpen)
        #expect(guardian.state(0, at: t0 + .seconds(1)) == .open(until: t0 + .seconds(30)))
        #expect(guardian.state(0, at: t0 + .seconds(30)) == .halfOpen)
    }

    @Test("A failure rate under the threshold leaves the circuit closed")
    func underThreshold() {
        let guardian = PartnerGuard(budgets: [nil])
        // 20 successes, then 40 failures among 40 more successes: at worst 40 of 100 (and never
        // half at any point).
        for _ in 0..<20 { #expect(guardian.record(0, failed: false, at: t0) == nil) }
        #expect(interleave(guardian, failures: 40, successes: 40, at: t0).isEmpty)
        #expect(guardian.state(0, at: t0) == .closed)
    }

    @Test("Calls older than the window no longer count")
    func windowSlides() {
        let guardian = PartnerGuard(budgets: [nil])
        // 12 of 16 calls fail at t0 (never 5 in a row): under the minimum count.
        for _ in 0..<4 { #expect(interleave(guardian, failures: 3, successes: 1, at: t0).isEmpty) }
        // A minute later those calls are gone: 6 of 12 would open it together with them (18 of
        // 28), but alone they are under the minimum count.
        let later = t0 + .seconds(61)
        #expect(interleave(guardian, failures: 6, successes: 6, at: later).isEmpty)
        #expect(guardian.state(0, at: later) == .closed)
    }

    @Test("A policy without an error-rate rule opens on consecutive failures only")
    func ruleOff() {
        let guardian = PartnerGuard(budgets: [nil], policy: CircuitBreakerPolicy(errorRate: nil))
        #expect(interleave(guardian, failures: 400, successes: 400, at: t0).isEmpty)
        #expect(guardian.state(0, at: t0) == .closed)
    }

    @Test("A custom rule: 80 % of at least 5 calls in 10 s")
    func customRule() {
        let guardian = PartnerGuard(
            budgets: [nil],
            policy: CircuitBreakerPolicy(
                failureThreshold: 100,
                errorRate: ErrorRateRule(threshold: 0.8, window: .seconds(10), minimumCalls: 5)
            )
        )
        guardian.record(0, failed: false, at: t0)
        for _ in 0..<3 { guardian.record(0, failed: true, at: t0 + .seconds(1)) }
        #expect(guardian.record(0, failed: true, at: t0 + .seconds(2)) == .openedByErrorRate(failures: 4, calls: 5))
    }

    @Test("A pause refuses every call as partner_paused until it ends, then calls go again")
    func pause() {
        let guardian = PartnerGuard(budgets: [nil])
        #expect(guardian.admit(0, at: t0) == nil)
        #expect(guardian.pause(0, for: .seconds(20), at: t0) == t0 + .seconds(20))
        #expect(guardian.inFlight(0) == 0)
        #expect(guardian.admit(0, at: t0 + .seconds(19)) == .partnerPaused)
        #expect(guardian.peek(0, at: t0 + .seconds(19)) == .partnerPaused)
        #expect(guardian.state(0, at: t0 + .seconds(19)) == .paused(until: t0 + .seconds(20)))
        #expect(guardian.admit(0, at: t0 + .seconds(20)) == nil)
        #expect(guardian.state(0, at: t0 + .seconds(20)) == .closed)
    }

    @Test("A pause is cut to maxPause; a shorter pause never shortens a longer one")
    func pauseCap() {
        let guardian = PartnerGuard(budgets: [nil], policy: CircuitBreakerPolicy(maxPause: .seconds(60)))
        #expect(guardian.pause(0, for: .seconds(31_536_000), at: t0) == t0 + .seconds(60))
        #expect(guardian.pause(0, for: .seconds(5), at: t0 + .seconds(1)) == t0 + .seconds(60))
        #expect(guardian.admit(0, at: t0 + .seconds(59)) == .partnerPaused)
        #expect(guardian.admit(0, at: t0 + .seconds(60)) == nil)
        #expect(CircuitBreakerPolicy().maxPause == .seconds(300))
    }

    @Test("A pause neither opens nor closes the circuit; a paused probe is freed for after the pause")
    func pauseAndCircuit() {
        let guardian = PartnerGuard(budgets: [nil])
        for _ in 0..<5 { guardian.record(0, failed: true, at: t0) }
        let probeTime = t0 + .seconds(30)
        #expect(guardian.admission(0, at: probeTime) == .admitted(probe: true))
        guardian.pause(0, for: .seconds(10), probe: true, at: probeTime)
        #expect(guardian.admit(0, at: probeTime + .seconds(5)) == .partnerPaused)
        // After the pause the circuit is still half open: one probe, and only one.
        #expect(guardian.admission(0, at: probeTime + .seconds(10)) == .admitted(probe: true))
        #expect(guardian.admit(0, at: probeTime + .seconds(10)) == .circuitOpen)

        // Pauses among failures don't count as failures.
        let closed = PartnerGuard(budgets: [nil])
        for _ in 0..<4 { closed.record(0, failed: true, at: t0) }
        closed.pause(0, for: .seconds(1), at: t0)
        #expect(closed.state(0, at: t0 + .seconds(1)) == .closed)
        #expect(closed.record(0, failed: true, at: t0 + .seconds(1)) == .openedByConsecutiveFailures(5))
    }

    @Test("Closing and reopening are reported once each")
    func changes() {
        let guardian = PartnerGuard(budgets: [nil])
        for _ in 0..<4 { #expect(guardian.record(0, failed: true, at: t0) == nil) }
        #expect(guardian.record(0, failed: true, at: t0) == .openedByConsecutiveFailures(5))
        #expect(guardian.admission(0, at: t0 + .seconds(30)) == .admitted(probe: true))
        #expect(guardian.record(0, failed: true, probe: true, at: t0 + .seconds(30)) == .reopened)
        #expect(guardian.admission(0, at: t0 + .seconds(60)) == .admitted(probe: true))
        #expect(guardian.record(0, failed: false, probe: true, at: t0 + .seconds(60)) == .closed)
        #expect(guardian.record(0, failed: false, at: t0 + .seconds(60)) == nil)
    }
}
