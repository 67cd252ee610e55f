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

@Suite struct NumericHostFormTests {
    @Test(
        "Names that resolvers read as IPv4 addresses are not DNS names",
        arguments: ["0x7f000001", "0x7f.1", "0xa.0.0.1", "2130706433", "127.1", "10.0.0.1", "example.123"]
    )
    func refused(host: String) {
        #expect(!HostName.isValidDNSName(host))
    }

    @Test(
        "Ordinary names stay valid",
        arguments: ["acme.example", "x0a.example", "0x.example", "a1.b2.c3", "localhost"]
    )
    func accepted(host: String) {
        #expect(HostName.isValidDNSName(host))
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

@Suite struct PartnerConsentSignalTests {
    @Test(
        "GPP skip sections and TCF presence decide per partner",
        arguments: [
            // (request's applicable GPP sections, TC string present, policy given, expected for the partner with skip sections [7, 8] and vendor 123, expected for the plain partner)
            ([Int](), false, false, true, true),
            ([7], false, false, false, true),
            ([2, 8], false, false, false, true),
            ([2], false, false, true, true),
            ([], true, false, false, false),
            ([], true, true, true, true),
            ([7], true, true, false, true),
        ]
    )
    func decides(sections: [Int], tcf: Bool, policy: Bool, strict: Bool, plain: Bool) async throws {
        let harness = try Harness(
            partners: partners(["strict", "plain"]) { partner in
                if partner.id == "strict" {
                    partner.consent = PartnerConsentRequirements(tcfVendorID: 123, gppSkipSections: [7, 8])
                }
            }
        )
        let consent = ConsentDecision(granted: true, partnerPolicy: policy ? DenyVendor(vendorID: 999) : nil)
        let strings = ConsentStrings(
            tcf: tcf ? "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA" : nil,
            gppSectionIDs: sections
        )
        let plan = await harness.kernel.explain(request(1, issued: true, consent: consent, consentStrings: strings))
        #expect(plan.decision(for: "strict") == (strict ? .dispatch : .skip(.consent)))
        #expect(plan.decision(for: "plain") == (plain ? .dispatch : .skip(.consent)))
    }
}

@Suite struct HeaderInjectionTests {
    @Test(
        "Browser-supplied values that would inject or bloat a header are refused, not sent",
        arguments: ["CPX\r\nX-Injected: yes", "a\u{0}b", "x\u{7F}", "8193 bytes"]
    )
    func refused(value: String) async throws {
        let value = value == "8193 bytes" ? String(repeating: "A", count: 8193) : value
        let partner = httpPartner("acme", headers: [item("X-Consent", "{gdpr_consent}")], token: Secret("t"))
        let harness = try Harness(partners: [partner])
        let consent = ConsentDecision(granted: true, partnerPolicy: DenyVendor(vendorID: 999))
        let report = await harness.kernel.process(
            request(1, issued: true, consent: consent, consentStrings: ConsentStrings(tcf: value))
        )
        #expect(report.plan.decision(for: "acme") == .skip(.adapterError))
        #expect(harness.transport.requests.isEmpty)
        #expect(harness.decisions("acme", "adapter_error") == 1)
        // Not the partner's fault: nothing is held for it, and the next clean request calls it.
        let next = await harness.kernel.process(request(2, issued: true, consent: consent))
        #expect(next.plan.decision(for: "acme") == .dispatch)
    }

    @Test("Ordinary consent strings pass")
    func passes() async throws {
        let partner = httpPartner("acme", headers: [item("X-Consent", "{gdpr_consent}")], token: Secret("t"))
        let harness = try Harness(partners: [partner])
        let consent = ConsentDecision(granted: true, partnerPolicy: DenyVendor(vendorID: 999))
        _ = await harness.kernel.process(
            request(1, issued: true, consent: consent, consentStrings: ConsentStrings(tcf: "CPXxRfAPXxRfA.tab\there"))
        )
        #expect(
            harness.transport.requests.first?.headers.first { $0.name == "X-Consent" }?.value
                == "CPXxRfAPXxRfA.tab\there"
        )
    }
}

@Suite struct PartnerBusyTests {
    @Test("A hanging partner can hold at most its in-flight cap; the others keep being called")
    func hangingPartnerDoesNotStarveOthers() async throws {
        let harness = try Harness(
            partners: partners(["slow", "fast"]) { $0.timeout = .seconds(30) },
            configuration: PullSyncConfiguration(maxInFlightCalls: 4, maxInFlightPerPartner: 2)
        )
        harness.transport.script(TestPartners.host("slow"), .uid("s", after: .seconds(30)))
        harness.transport.script(TestPartners.host("fast"), .uid("f", after: .milliseconds(5)))
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        let running = Task { await dispatcher.run() }
        // Page views one after another: without the cap, the hanging partner would take all
        // four global slots by the fourth request and every later call would wait 30 s.
        for n in 1...12 {
            _ = dispatcher.submit(request(n, issued: true))
            let stored = try await eventually(within: .seconds(10)) { try await harness.storedUID(n, "fast") != nil }
            #expect(stored, "request \(n)")
        }
        #expect(harness.transport.count(host: TestPartners.host("slow")) == 2)
        #expect(harness.decisions("slow", "partner_busy") == 10)
        #expect(harness.decisions("fast", "dispatch") == 12)
        dispatcher.beginShutdown()
        _ = await finishes(running)
    }

    @Test("The default per-partner cap is half the global cap, at least the per-request window")
    func defaults() {
        #expect(PullSyncConfiguration().effectiveMaxInFlightPerPartner == 64)
        #expect(PullSyncConfiguration(maxInFlightCalls: 4).effectiveMaxInFlightPerPartner == 3)
        #expect(PullSyncConfiguration(maxInFlightPerPartner: 5).effectiveMaxInFlightPerPartner == 5)
    }
}

@Suite struct RateLimiterMemoryTests {
    @Test("Keys idle past their window are forgotten by the periodic sweep")
    func idleKeysAreSwept() async throws {
        let limiter = InMemoryRateLimiter(sweepInterval: .seconds(60))
        let t0 = Timestamp(secondsSinceEpoch: 1_000_000)
        let policy = RateLimitPolicy(calls: 10, window: .seconds(3600))
        for n in 0..<2_000 {
            _ = try await limiter.acquire([RateLimitRequest(key: "k\(n)", policy: policy)], at: t0)
        }
        #expect(limiter.keyCount == 2_000)
        // Within the window nothing is forgotten, whatever the sweeps.
        _ = try await limiter.acquire([RateLimitRequest(key: "other", policy: policy)], at: t0 + .seconds(1800))
        #expect(limiter.keyCount == 2_001)
        _ = try await limiter.acquire([RateLimitRequest(key: "late", policy: policy)], at: t0 + .seconds(3601))
        #expect(limiter.keyCount == 2)
        #expect(try await limiter.count(key: "k1", window: .seconds(3600), at: t0 + .seconds(3601)) == 0)
    }
}

@Suite struct InFlightDeduplicationTests {
    @Test("A second page view while the first one's call is out doesn't call the partner again")
    func secondViewSkipsInFlight() async throws {
        let harness = try Harness(partners: partners(["a"]))
        harness.transport.script(TestPartners.host("a"), .uid("u", after: .milliseconds(200)))
        try await harness.seed(1)
        async let first = harness.kernel.process(request(1))
        // Wait until the first call is at the partner, then view another page.
        #expect(await eventually { harness.transport.inFlight == 1 })
        let second = await harness.kernel.process(request(1))
        #expect(second.plan.decision(for: "a") == .skip(.inFlight))
        let firstReport = await first
        #expect(firstReport.results.first?.write == .stored)
        #expect(harness.calls("a") == 1)
        #expect(harness.decisions("a", "in_flight") == 1)
        // Once it is back, the pair is free again (here: fresh, so skipped as such).
        let third = await harness.kernel.process(request(1))
        #expect(third.plan.decision(for: "a") == .skip(.fresh))
        // explain shows in_flight too, without taking anything.
        harness.transport.script(TestPartners.host("a"), .uid("u", after: .milliseconds(200)))
        try await harness.seed(2)
        async let busy = harness.kernel.process(request(2))
        #expect(await eventually { harness.transport.inFlight == 1 })
        #expect(await harness.kernel.explain(request(2)).decision(for: "a") == .skip(.inFlight))
        _ = await busy
    }
}

@Suite struct RecentlyIssuedTests {
    @Test("A browser's second page view counts as known even if the first was turned away by a full queue")
    func issuedThenDroppedStillKnown() async throws {
        let harness = try Harness(partners: partners(["a"]), configuration: PullSyncConfiguration(queueCapacity: 1))
        let dispatcher = PullDispatcher(kernel: harness.kernel)
        #expect(dispatcher.submit(request(100, issued: true)) == .enqueued)
        // The queue is full: the issued EC's own request is dropped…
        #expect(dispatcher.submit(request(1, issued: true)) == .dropped)
        let running = Task { await dispatcher.run() }
        #expect(await eventually { dispatcher.statistics.processed == 1 })
        // …but its next page view (cookie now set, not issued) is still known, and calls.
        #expect(dispatcher.submit(request(1)) == .enqueued)
        #expect(await eventually { dispatcher.statistics.processed == 2 })
        #expect(harness.calls("a") == 2)
        #expect(try await harness.record(1) != nil)
        // A spoofed, never-issued EC stays unknown.
        #expect(dispatcher.submit(request(2)) == .enqueued)
        #expect(await eventually { dispatcher.statistics.processed == 3 })
        #expect(harness.calls("a") == 2)
        dispatcher.beginShutdown()
        _ = await finishes(running)
    }
}
