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

/// Spec "Behaviour" 2 and issue 8: a `429` or `503` with `Retry-After` pauses the partner for
/// every EC (`partner_paused`), capped by the policy's `maxPause`; other partners go on.
@Suite("Partner pause")
struct PartnerPauseTests {
    static func reply(_ status: Int, retryAfter: String?) -> ScriptedTransport.Reply {
        ScriptedTransport.Reply(
            .response(status: status, headers: retryAfter.map { [("Retry-After", $0)] } ?? [], body: [])
        )
    }

    @Test("429 with Retry-After: 20 pauses the partner for 20 s of clock, for every EC", arguments: [429, 503])
    func pauses(status: Int) async throws {
        let harness = try Harness(partners: partners(["a", "b"]))
        harness.transport.script(TestPartners.host("a"), Self.reply(status, retryAfter: "20"))
        #expect(await harness.kernel.process(request(1, issued: true)).plan.decision(for: "a") == .dispatch)

        harness.transport.script(TestPartners.host("a"), .uid("back"))
        for n in 2...4 {
            let report = await harness.kernel.process(request(n, issued: true))
            #expect(report.plan.decision(for: "a") == .skip(.partnerPaused))
            #expect(report.plan.decision(for: "b") == .dispatch)
        }
        harness.clock.advance(by: .seconds(19))
        #expect(await harness.kernel.explain(request(5, issued: true)).decision(for: "a") == .skip(.partnerPaused))
        harness.clock.advance(by: .seconds(1))
        #expect(await harness.kernel.process(request(5, issued: true)).plan.decision(for: "a") == .dispatch)

        #expect(harness.calls("a") == 2)
        #expect(harness.decisions("a", "partner_paused") == 3)
        #expect(harness.counter("pullsync_partner_pauses_total", [("partner", "a")]) == 1)
        #expect(harness.counter("pullsync_outcomes_total", [("partner", "a"), ("outcome", "http_error")]) == 1)
        #expect(
            harness.logs.entries.contains {
                $0.level == .warning && $0.message.description.hasPrefix("partner asked for a pause")
                    && $0.metadata["pause_s"] == "20"
            }
        )
    }

    @Test("An HTTP-date Retry-After pauses until that date")
    func httpDate() async throws {
        let harness = try Harness(partners: partners(["a"]))
        // The test clock starts at 2026-01-01T00:00:00Z.
        harness.transport.script(TestPartners.host("a"), Self.reply(503, retryAfter: "Thu, 01 Jan 2026 00:01:30 GMT"))
        _ = await harness.kernel.process(request(1, issued: true))
        harness.clock.advance(by: .seconds(89))
        #expect(await harness.kernel.process(request(2, issued: true)).plan.decision(for: "a") == .skip(.partnerPaused))
        harness.clock.advance(by: .seconds(1))
        #expect(await harness.kernel.process(request(3, issued: true)).plan.decision(for: "a") == .dispatch)
    }

    @Test("A year-long Retry-After is cut to the policy's maxPause (5 minutes by default)")
    func capped() async throws {
        let harness = try Harness(partners: partners(["a"]))
        harness.transport.script(TestPartners.host("a"), Self.reply(429, retryAfter: "31536000"))
        _ = await harness.kernel.process(request(1, issued: true))
        harness.clock.advance(by: .seconds(299))
        #expect(await harness.kernel.process(request(2, issued: true)).plan.decision(for: "a") == .skip(.partnerPaused))
        harness.clock.advance(by: .seconds(1))
        #expect(await harness.kernel.process(request(3, issued: true)).plan.decision(for: "a") == .dispatch)
    }

    @Test(
        "Without a usable Retry-After (or on other statuses) it is an ordinary failure, toward the circuit",
        arguments: [
            (429, nil), (503, nil), (503, "soon"), (429, "0"), (500, "60"), (200, "60"),
        ] as [(Int, String?)]
    )
    func noPause(status: Int, retryAfter: String?) async throws {
        let harness = try Harness(partners: partners(["a"]))
        harness.transport.script(TestPartners.host("a"), Self.reply(status, retryAfter: retryAfter))
        for n in 1...5 { _ = await harness.kernel.process(request(n, issued: true)) }
        #expect(harness.calls("a") == 5)
        #expect(harness.counter("pullsync_partner_pauses_total", [("partner", "a")]) == 0)
        // Five failures (a 200 with an empty body is invalid_body) open the circuit.
        #expect(await harness.kernel.process(request(6, issued: true)).plan.decision(for: "a") == .skip(.circuitOpen))
    }

    @Test("Calls already out when the pause begins finish; none starts while it lasts")
    func concurrentRequests() async throws {
        let harness = try Harness(partners: partners(["a"]))
        harness.transport.script(TestPartners.host("a"), Self.reply(429, retryAfter: "60"))
        _ = await harness.kernel.process(request(1, issued: true))
        let reports = await withTaskGroup(of: Decision?.self) { group in
            for n in 2...50 {
                group.addTask { await harness.kernel.process(request(n, issued: true)).plan.decision(for: "a") }
            }
            return await group.reduce(into: [Decision?]()) { $0.append($1) }
        }
        #expect(reports.allSatisfy { $0 == .skip(.partnerPaused) })
        #expect(harness.calls("a") == 1)
    }
}
