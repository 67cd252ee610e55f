import PullSyncKernel
import PullSyncTesting
import Testing

/// Spec "Behaviour" 2: a partner whose circuit is open is skipped (`circuit_open`), through the kernel.
@Suite("Circuit breaker")
struct CircuitBreakerTests {
    /// A harness with partner `a` failing (`500`), whose probe requests (while `probing` is set)
    /// plan one more request concurrently and record its decision.
    struct ProbeHarness {
        let harness: Harness
        let probing = Box(false)
        let duringProbe = Box<[Decision?]>([])
        private let kernel = Box<PullKernel?>(nil)
        private let nextEC = Box(1)

        init() throws {
            let (probing, duringProbe, kernel) = (probing, duringProbe, kernel)
            harness = try Harness(partners: partners(["a", "b"])) { base in
                HookTransport(base: base) { sent in
                    guard sent.url.host == TestPartners.host("a"), probing.value, let kernel = kernel.value else {
                        return
                    }
                    let plan = await kernel.plan(request(1_000 + duringProbe.value.count, issued: true))
                    duringProbe.update { $0.append(plan.decision(for: "a")) }
                }
            }
            kernel.value = harness.kernel
            harness.transport.script(TestPartners.host("a"), .status(500))
        }

        /// Processes a request for a new EC; returns partner `a`'s decision.
        func pull() async -> Decision? {
            let n = nextEC.value
            nextEC.value = n + 1
            return await harness.kernel.process(request(n, issued: true)).plan.decision(for: "a")
        }
    }

    @Test("Five consecutive failures open the circuit: the partner is skipped, the others still called")
    func opens() async throws {
        let probe = try ProbeHarness()
        for _ in 0..<5 { #expect(await probe.pull() == .dispatch) }

        #expect(await probe.pull() == .skip(.circuitOpen))
        probe.harness.clock.advance(by: .seconds(29))
        #expect(await probe.pull() == .skip(.circuitOpen))

        #expect(probe.harness.calls("a") == 5)
        #expect(probe.harness.calls("b") == 7)
        #expect(probe.harness.decisions("a", "circuit_open") == 2)
        #expect(probe.harness.counter("pullsync_outcomes_total", [("partner", "a"), ("outcome", "http_error")]) == 5)
    }

    @Test("30 s later exactly one probe is let through; its success closes the circuit")
    func probeSucceeds() async throws {
        let probe = try ProbeHarness()
        for _ in 0..<5 { _ = await probe.pull() }
        probe.harness.clock.advance(by: .seconds(30))
        probe.harness.transport.script(TestPartners.host("a"), .status(404))

        probe.probing.value = true
        #expect(await probe.pull() == .dispatch)
        probe.probing.value = false

        // A request decided while the probe was in flight was refused.
        #expect(probe.duringProbe.value == [.skip(.circuitOpen)])
        #expect(probe.harness.calls("a") == 6)
        // Closed: every request calls again.
        #expect(await probe.pull() == .dispatch)
        #expect(await probe.pull() == .dispatch)
        #expect(probe.harness.calls("a") == 8)
    }

    @Test("A failed probe reopens the circuit for another 30 s")
    func probeFails() async throws {
        let probe = try ProbeHarness()
        for _ in 0..<5 { _ = await probe.pull() }
        probe.harness.clock.advance(by: .seconds(30))

        probe.probing.value = true
        #expect(await probe.pull() == .dispatch)
        probe.probing.value = false
        #expect(probe.duringProbe.value == [.skip(.circuitOpen)])

        #expect(await probe.pull() == .skip(.circuitOpen))
        probe.harness.clock.advance(by: .seconds(29))
        #expect(await probe.pull() == .skip(.circuitOpen))
        probe.harness.clock.advance(by: .seconds(1))
        #expect(await probe.pull() == .dispatch)
        #expect(probe.harness.calls("a") == 7)
    }

    @Test(
        "Only partner failures count toward opening the circuit",
        arguments: [
            (ScriptedTransport.Reply.status(500), true),
            (.status(302), true),
            (.failure(.timeout), true),
            (.failure(.transportError), true),
            (.failure(.tlsError), true),
            (.ok("not json"), true),
            (.status(404), false),
            (.ok("{\"uid\":null}"), false),
            (.uid("u"), false),
        ]
    )
    func failureClasses(reply: ScriptedTransport.Reply, opens: Bool) async throws {
        let probe = try ProbeHarness()
        probe.harness.transport.script(TestPartners.host("a"), reply)
        for _ in 0..<5 { _ = await probe.pull() }

        #expect(await probe.pull() == (opens ? .skip(.circuitOpen) : .dispatch))
    }
}
