import PullSyncKernel
import Testing

/// The per-process partner protection on its own: circuit breaker states and the
/// calls-per-second token bucket.
@Suite("Partner guard")
struct PartnerGuardTests {
    let t0 = Timestamp(secondsSinceEpoch: 1_000)

    @Test("Five consecutive failures open the circuit for 30 s, then one probe is let through")
    func circuitOpensAndProbes() {
        let guardian = PartnerProtection(budget: nil)
        for _ in 0..<4 { guardian.record(failed: true, at: t0) }
        #expect(guardian.admit(at: t0) == nil)
        #expect(!guardian.isOpen(at: t0))

        guardian.record(failed: true, at: t0)
        #expect(guardian.isOpen(at: t0))
        #expect(guardian.admit(at: t0) == .circuitOpen)
        #expect(guardian.admit(at: t0 + .seconds(30) - .nanoseconds(1)) == .circuitOpen)

        #expect(!guardian.isOpen(at: t0 + .seconds(30)))
        #expect(guardian.admit(at: t0 + .seconds(30)) == nil)
        #expect(guardian.admit(at: t0 + .seconds(30)) == .circuitOpen)
        #expect(guardian.admit(at: t0 + .seconds(60) - .nanoseconds(1)) == .circuitOpen)
        // A probe that never comes back expires after the open duration: the circuit can't wedge.
        #expect(guardian.admit(at: t0 + .seconds(60)) == nil)
    }

    @Test("A late failure of a call sent before the circuit opened doesn't reopen a half-open circuit")
    func lateFailureIsOldNews() {
        let guardian = PartnerProtection(budget: nil)
        for _ in 0..<5 { guardian.record(failed: true, at: t0) }
        #expect(guardian.admission(at: t0 + .seconds(30)) == .admitted(probe: true))
        guardian.record(failed: true, probe: false, at: t0 + .seconds(31))
        #expect(!guardian.isOpen(at: t0 + .seconds(31)))
        guardian.record(failed: false, probe: true, at: t0 + .seconds(31))
        #expect(guardian.admission(at: t0 + .seconds(31)) == .admitted(probe: false))
    }

    @Test("The in-flight cap refuses a partner's calls beyond it until one ends")
    func inFlightCap() {
        let guardian = [nil, nil].map { budget in PartnerProtection(
            budget: budget, maxInFlight: 2) }
        #expect(guardian[0].admit(at: t0) == nil)
        #expect(guardian[0].admit(at: t0) == nil)
        #expect(guardian[0].admit(at: t0) == .partnerBusy)
        #expect(guardian[1].admit(at: t0) == nil)
        #expect(guardian[0].callsInFlight == 2)
        guardian[0].record(failed: true, at: t0)
        #expect(guardian[0].admit(at: t0) == nil)
        guardian[0].refund()
        guardian[0].refund()
        #expect(guardian[0].callsInFlight == 0)
    }

    @Test("A successful probe closes the circuit; a failed one reopens it for another 30 s")
    func probeOutcome() {
        let closing = PartnerProtection(budget: nil)
        let reopening = PartnerProtection(budget: nil)
        for guardian in [closing, reopening] {
            for _ in 0..<5 { guardian.record(failed: true, at: t0) }
            #expect(guardian.admit(at: t0 + .seconds(30)) == nil)
        }

        closing.record(failed: false, at: t0 + .seconds(31))
        #expect(closing.admit(at: t0 + .seconds(31)) == nil)
        #expect(closing.admit(at: t0 + .seconds(31)) == nil)
        // Closed again from zero: four failures don't reopen it.
        for _ in 0..<4 { closing.record(failed: true, at: t0 + .seconds(32)) }
        #expect(closing.admit(at: t0 + .seconds(32)) == nil)

        reopening.record(failed: true, probe: true, at: t0 + .seconds(31))
        #expect(reopening.isOpen(at: t0 + .seconds(31)))
        #expect(reopening.admit(at: t0 + .seconds(60)) == .circuitOpen)
        #expect(reopening.admit(at: t0 + .seconds(61)) == nil)
        #expect(reopening.admit(at: t0 + .seconds(61)) == .circuitOpen)
    }

    @Test("A success resets the count of consecutive failures")
    func successResetsCount() {
        let guardian = PartnerProtection(budget: nil)
        for _ in 0..<4 { guardian.record(failed: true, at: t0) }
        guardian.record(failed: false, at: t0)
        for _ in 0..<4 { guardian.record(failed: true, at: t0) }
        #expect(!guardian.isOpen(at: t0))
        guardian.record(failed: true, at: t0)
        #expect(guardian.isOpen(at: t0))
    }

    @Test("The policy's threshold and open duration are honoured")
    func customPolicy() {
        let guardian = [nil, nil].map { budget in PartnerProtection(
            budget: budget,
            policy: CircuitBreakerPolicy(failureThreshold: 2, openDuration: .seconds(5))
        ) }
        guardian[1].record(failed: true, at: t0)
        guardian[1].record(failed: true, at: t0)
        #expect(guardian[1].admit(at: t0 + .seconds(4)) == .circuitOpen)
        #expect(guardian[0].admit(at: t0 + .seconds(4)) == nil)
        #expect(guardian[1].admit(at: t0 + .seconds(5)) == nil)
        #expect(CircuitBreakerPolicy() == CircuitBreakerPolicy(failureThreshold: 5, openDuration: .seconds(30)))
    }

    @Test("Refunding an unsent probe lets the next request probe")
    func refundProbe() {
        let guardian = PartnerProtection(budget: nil)
        for _ in 0..<5 { guardian.record(failed: true, at: t0) }
        #expect(guardian.admit(at: t0 + .seconds(30)) == nil)
        guardian.refund(probe: true)
        #expect(guardian.admit(at: t0 + .seconds(30)) == nil)
        #expect(guardian.admit(at: t0 + .seconds(30)) == .circuitOpen)
    }

    @Test("peek answers like admit but takes neither the probe nor a token")
    func peekChangesNothing() {
        let guardian = PartnerProtection(budget: 1)
        for _ in 0..<5 { guardian.record(failed: true, at: t0) }
        let probeTime = t0 + .seconds(30)
        #expect(guardian.peek(at: t0) == .circuitOpen)
        #expect(guardian.peek(at: probeTime) == nil)
        #expect(guardian.peek(at: probeTime) == nil)
        #expect(guardian.admit(at: probeTime) == nil)
        #expect(guardian.peek(at: probeTime) == .circuitOpen)
    }

    @Test("A budget of 2 per second admits two calls per second of clock and refills")
    func budget() {
        let guardian = [2, nil].map { budget in PartnerProtection(budget: budget) }
        #expect(guardian[0].admit(at: t0) == nil)
        #expect(guardian[0].admit(at: t0) == nil)
        #expect(guardian[0].admit(at: t0) == .budget)
        #expect(guardian[0].admit(at: t0 + .milliseconds(250)) == .budget)
        #expect(guardian[0].admit(at: t0 + .milliseconds(500)) == nil)
        #expect(guardian[0].admit(at: t0 + .milliseconds(500)) == .budget)
        // A long pause refills to one second's worth, no more.
        #expect(guardian[0].admit(at: t0 + .seconds(60)) == nil)
        #expect(guardian[0].admit(at: t0 + .seconds(60)) == nil)
        #expect(guardian[0].admit(at: t0 + .seconds(60)) == .budget)
        // No budget, no limit.
        #expect((0..<1000).allSatisfy { _ in guardian[1].admit(at: t0) == nil })
    }

    @Test("A fractional budget allows one call, then one per 1/budget seconds")
    func fractionalBudget() {
        let guardian = PartnerProtection(budget: 0.5)
        #expect(guardian.admit(at: t0) == nil)
        #expect(guardian.admit(at: t0 + .seconds(1)) == .budget)
        #expect(guardian.admit(at: t0 + .seconds(2)) == nil)
        #expect(guardian.admit(at: t0 + .seconds(2)) == .budget)
    }

    @Test("Refunding gives a budget token back, up to the bucket's capacity")
    func refundBudget() {
        let guardian = PartnerProtection(budget: 2)
        #expect(guardian.admit(at: t0) == nil)
        #expect(guardian.admit(at: t0) == nil)
        guardian.refund()
        #expect(guardian.admit(at: t0) == nil)
        #expect(guardian.admit(at: t0) == .budget)
        guardian.refund()
        guardian.refund()
        guardian.refund()
        #expect(guardian.admit(at: t0) == nil)
        #expect(guardian.admit(at: t0) == nil)
        #expect(guardian.admit(at: t0) == .budget)
    }
}

/// The second way a circuit opens (an error rate over a window) and pauses a partner asks for.
@Suite("Partner guard: error rate and pauses")
struct PartnerGuardErrorRateTests {
    let t0 = Timestamp(secondsSinceEpoch: 1_000)

    /// Records `failures` failures and `successes` successes, interleaved so that no run of
    /// consecutive failures reaches the threshold.
    func interleave(_ guardian: PartnerProtection, failures: Int, successes: Int, at time: Timestamp) -> [CircuitChange] {
        var changes: [CircuitChange] = []
        var (f, s) = (failures, successes)
        while f > 0 || s > 0 {
            if f > 0 {
                f -= 1
                if let change = guardian.record(failed: true, at: time) { changes.append(change) }
            }
            if s > 0 {
                s -= 1
                if let change = guardian.record(failed: false, at: time) { changes.append(change) }
            }
        }
        return changes
    }

    @Test("Half of 20 calls in the window failing opens the circuit, with no run of 5 failures")
    func errorRateOpens() {
        let guardian = PartnerProtection(budget: nil)
        // 9 of 19: under the minimum count; the 10th failure makes 10 of 20.
        #expect(interleave(guardian, failures: 9, successes: 10, at: t0).isEmpty)
        #expect(guardian.admit(at: t0) == nil)
        guardian.refund()
        #expect(guardian.record(failed: true, at: t0) == .openedByErrorRate(failures: 10, calls: 20))
        #expect(guardian.admit(at: t0 + .seconds(1)) == .circuitOpen)
        #expect(guardian.state(at: t0 + .seconds(1)) == .open(until: t0 + .seconds(30)))
        #expect(guardian.state(at: t0 + .seconds(30)) == .halfOpen)
    }

    @Test("A failure rate under the threshold leaves the circuit closed")
    func underThreshold() {
        let guardian = PartnerProtection(budget: nil)
        // 20 successes, then 40 failures among 40 more successes: at worst 40 of 100 (and never
        // half at any point).
        for _ in 0..<20 { #expect(guardian.record(failed: false, at: t0) == nil) }
        #expect(interleave(guardian, failures: 40, successes: 40, at: t0).isEmpty)
        #expect(guardian.state(at: t0) == .closed)
    }

    @Test("Calls older than the window no longer count")
    func windowSlides() {
        let guardian = PartnerProtection(budget: nil)
        // 12 of 16 calls fail at t0 (never 5 in a row): under the minimum count.
        for _ in 0..<4 { #expect(interleave(guardian, failures: 3, successes: 1, at: t0).isEmpty) }
        // A minute later those calls are gone: 6 of 12 would open it together with them (18 of
        // 28), but alone they are under the minimum count.
        let later = t0 + .seconds(61)
        #expect(interleave(guardian, failures: 6, successes: 6, at: later).isEmpty)
        #expect(guardian.state(at: later) == .closed)
    }

    @Test("A policy without an error-rate rule opens on consecutive failures only")
    func ruleOff() {
        let guardian = PartnerProtection(
            budget: nil, policy: CircuitBreakerPolicy(errorRate: nil))
        #expect(interleave(guardian, failures: 400, successes: 400, at: t0).isEmpty)
        #expect(guardian.state(at: t0) == .closed)
    }

    @Test("A custom rule: 80 % of at least 5 calls in 10 s")
    func customRule() {
        let guardian = PartnerProtection(
            budget: nil,
            policy: CircuitBreakerPolicy(
                failureThreshold: 100,
                errorRate: ErrorRateRule(threshold: 0.8, window: .seconds(10), minimumCalls: 5)
            )
        )
        guardian.record(failed: false, at: t0)
        for _ in 0..<3 { guardian.record(failed: true, at: t0 + .seconds(1)) }
        #expect(guardian.record(failed: true, at: t0 + .seconds(2)) == .openedByErrorRate(failures: 4, calls: 5))
    }

    @Test("A pause refuses every call as partner_paused until it ends, then calls go again")
    func pause() {
        let guardian = PartnerProtection(budget: nil)
        #expect(guardian.admit(at: t0) == nil)
        #expect(guardian.pause(for: .seconds(20), at: t0) == t0 + .seconds(20))
        #expect(guardian.callsInFlight == 0)
        #expect(guardian.admit(at: t0 + .seconds(19)) == .partnerPaused)
        #expect(guardian.peek(at: t0 + .seconds(19)) == .partnerPaused)
        #expect(guardian.state(at: t0 + .seconds(19)) == .paused(until: t0 + .seconds(20)))
        #expect(guardian.admit(at: t0 + .seconds(20)) == nil)
        #expect(guardian.state(at: t0 + .seconds(20)) == .closed)
    }

    @Test("A pause is cut to maxPause; a shorter pause never shortens a longer one")
    func pauseCap() {
        let guardian = PartnerProtection(
            budget: nil, policy: CircuitBreakerPolicy(maxPause: .seconds(60)))
        #expect(guardian.pause(for: .seconds(31_536_000), at: t0) == t0 + .seconds(60))
        #expect(guardian.pause(for: .seconds(5), at: t0 + .seconds(1)) == t0 + .seconds(60))
        #expect(guardian.admit(at: t0 + .seconds(59)) == .partnerPaused)
        #expect(guardian.admit(at: t0 + .seconds(60)) == nil)
        #expect(CircuitBreakerPolicy().maxPause == .seconds(300))
    }

    @Test("A pause neither opens nor closes the circuit; a paused probe is freed for after the pause")
    func pauseAndCircuit() {
        let guardian = PartnerProtection(budget: nil)
        for _ in 0..<5 { guardian.record(failed: true, at: t0) }
        let probeTime = t0 + .seconds(30)
        #expect(guardian.admission(at: probeTime) == .admitted(probe: true))
        guardian.pause(for: .seconds(10), probe: true, at: probeTime)
        #expect(guardian.admit(at: probeTime + .seconds(5)) == .partnerPaused)
        // After the pause the circuit is still half open: one probe, and only one.
        #expect(guardian.admission(at: probeTime + .seconds(10)) == .admitted(probe: true))
        #expect(guardian.admit(at: probeTime + .seconds(10)) == .circuitOpen)

        // Pauses among failures don't count as failures.
        let closed = PartnerProtection(budget: nil)
        for _ in 0..<4 { closed.record(failed: true, at: t0) }
        closed.pause(for: .seconds(1), at: t0)
        #expect(closed.state(at: t0 + .seconds(1)) == .closed)
        #expect(closed.record(failed: true, at: t0 + .seconds(1)) == .openedByConsecutiveFailures(5))
    }

    @Test("Closing and reopening are reported once each")
    func changes() {
        let guardian = PartnerProtection(budget: nil)
        for _ in 0..<4 { #expect(guardian.record(failed: true, at: t0) == nil) }
        #expect(guardian.record(failed: true, at: t0) == .openedByConsecutiveFailures(5))
        #expect(guardian.admission(at: t0 + .seconds(30)) == .admitted(probe: true))
        #expect(guardian.record(failed: true, probe: true, at: t0 + .seconds(30)) == .reopened)
        #expect(guardian.admission(at: t0 + .seconds(60)) == .admitted(probe: true))
        #expect(guardian.record(failed: false, probe: true, at: t0 + .seconds(60)) == .closed)
        #expect(guardian.record(failed: false, at: t0 + .seconds(60)) == nil)
    }
}
