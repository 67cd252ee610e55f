import PullSyncKernel
import PullSyncTesting
import Testing

/// Rules added after the first review of the kernel.
@Suite struct RequestSkipCountingTests {
    @Test(
        "Request-level skips decided after queueing are counted once per request",
        arguments: [("unknown", "unknown_ec"), ("withdrawn", "consent")]
    )
    func countedOnce(scenario: String, reason: String) async throws {
        let harness = try Harness(partners: partners(["a", "b"]))
        if scenario == "withdrawn" {
            try await harness.seed(1)
            _ = try await harness.graph.withdraw(ecHash: hash(1), at: harness.clock.now())
        }
        let report = await harness.kernel.process(request(1))
        #expect(report.plan.requestSkip?.rawValue == reason)
        #expect(report.results.isEmpty)
        #expect(harness.counter("pullsync_request_skips_total", [("reason", reason)]) == 1)
        #expect(harness.decisions("a", "dispatch") == 0)
    }

    @Test("A request that goes on has no request-level skip")
    func noRequestSkip() async throws {
        let harness = try Harness(partners: partners(["a"]))
        let report = await harness.kernel.process(request(1, issued: true))
        #expect(report.plan.requestSkip == nil)
        #expect(report.plan.decision(for: "a") == .dispatch)
    }
}

@Suite struct TokenInURLTests {
    @Test("HTTPPullAdapter refuses {token} in a query template even when built in code")
    func tokenInQueryIsRefused() async throws {
        let partner = httpPartner(
            "leaky",
            query: [item("ec_id", "{ec_id}"), item("key", "{token}")],
            auth: .headerTemplate(.environment("LEAKY")),
            token: Secret("TOPSECRET")
        )
        let harness = try Harness(partners: [partner])
        let report = await harness.kernel.process(request(1, issued: true))
        #expect(report.plan.decision(for: "leaky") == .skip(.adapterError))
        #expect(harness.transport.requests.isEmpty)
        let logged = harness.logs.entries.map { "\($0.message) \($0.metadata)" }.joined()
        #expect(logged.contains("may not use {token}"))
        #expect(!logged.contains("TOPSECRET"))
    }
}

@Suite struct CircuitBookkeepingTests {
    @Test("A refused target neither opens nor resets a partner's circuit")
    func refusedTargetIsNeutral() async throws {
        let harness = try Harness(
            partners: partners(["a"]),
            configuration: PullSyncConfiguration(circuitBreaker: CircuitBreakerPolicy(failureThreshold: 2))
        )
        // One real failure, then refusals by the target check, then one more failure: the
        // refusals must not reset the count, so the second failure opens the circuit.
        harness.transport.script(TestPartners.host("a"), .status(500))
        _ = await harness.kernel.process(request(1, issued: true))
        harness.transport.script(TestPartners.host("a"), .failure(.refusedTarget))
        for n in 2...4 { _ = await harness.kernel.process(request(n, issued: true)) }
        harness.transport.script(TestPartners.host("a"), .status(500))
        _ = await harness.kernel.process(request(5, issued: true))
        let next = await harness.kernel.process(request(6, issued: true))
        #expect(next.plan.decision(for: "a") == .skip(.circuitOpen))
        #expect(harness.calls("a") == 5)
    }
}

@Suite struct IPv6HostTests {
    @Test("A bracketed IPv6 literal and its bare form are the same host")
    func bracketsAreIgnored() {
        #expect(HostName.normalize("[::1]") == "::1")
        #expect(AllowedHosts(["[::1]"]).contains("::1"))
        #expect(AllowedHosts(["::1"]).contains("[::1]"))
        #expect(PartnerURL(scheme: "http", host: "[::1]", port: 8080).host == "::1")
    }
}
