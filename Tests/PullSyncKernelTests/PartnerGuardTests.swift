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
