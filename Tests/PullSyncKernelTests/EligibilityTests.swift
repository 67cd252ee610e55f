import PullSyncKernel
import PullSyncTesting
import Testing

/// Spec "Behaviour" 1-2: which requests and partners may be called at all.
@Suite("Eligibility")
struct EligibilityTests {
    @Test(
        "Excluded routes skip every partner with reason route",
        arguments: [
            "/sync", "/sync/", "/sync/partner", "/sync?redirect=1", "/identify", "/identify/x?y=1", "/auction",
            "/auction?id=7", "/admin", "/admin/x", "/admin/x/y?z", "/_pullsync/ids", "/_pullsync/health",
        ]
    )
    func excludedRoute(path: String) async throws {
        let harness = try Harness(partners: partners(count: 2))
        try await harness.seed(1)

        #expect(harness.kernel.gate(request(1, path: path)) == .skip(.route))
        let report = await harness.kernel.process(request(1, path: path))
        #expect(report.plan.calls.isEmpty)
        #expect(report.results.isEmpty)
        #expect(harness.transport.records.isEmpty)
        let explained = await harness.kernel.explain(request(1, path: path))
        #expect(explained.decisions.map(\.decision) == [.skip(.route), .skip(.route)])
    }

    @Test(
        "Organic routes are dispatched",
        arguments: ["/", "/news/a", "/synced", "/auctions", "/news/sync", "/administrator", "/?sync=1"]
    )
    func organicRoute(path: String) async throws {
        let harness = try Harness(partners: partners(count: 2))
        try await harness.seed(1)

        #expect(harness.kernel.gate(request(1, path: path)) == .pass(EdgeCookie(unchecked: ec(1))))
        let report = await harness.kernel.process(request(1, path: path))
        #expect(report.plan.decisions.map(\.decision) == [.dispatch, .dispatch])
        #expect(harness.transport.records.count == 2)
    }

    @Test(
        "A missing or malformed EC skips with invalid_ec and calls nobody",
        arguments: [
            nil,
            "",
            String(repeating: "A", count: 64) + ".AbC123",  // uppercase hex
            String(repeating: "a", count: 63) + ".AbC123",  // 63 hex digits
            String(repeating: "a", count: 64) + ".AbC12",  // suffix too short
            String(repeating: "a", count: 64) + ".AbC1234",  // suffix too long
            String(repeating: "a", count: 64) + ".AbC-12",  // non-alphanumeric suffix
            String(repeating: "a", count: 64) + "XAbC123",  // no dot
        ] as [String?]
    )
    func invalidEC(raw: String?) async throws {
        let harness = try Harness(partners: partners(count: 2))
        let organic = OrganicRequest(path: "/", edgeCookie: raw, ecIssuedOnThisRequest: true, consent: .granted)

        #expect(harness.kernel.gate(organic) == .skip(.invalidEC))
        let report = await harness.kernel.process(organic)
        #expect(report.plan.edgeCookie == nil)
        #expect(report.results.isEmpty)
        #expect(harness.transport.records.isEmpty)
        #expect(harness.graph.allRecords.isEmpty)
        let explained = await harness.kernel.explain(organic)
        #expect(explained.decisions.map(\.decision) == [.skip(.invalidEC), .skip(.invalidEC)])
    }

    @Test("A well-formed EC the graph doesn't know (spoofed) never causes a partner call")
    func unknownEC() async throws {
        let harness = try Harness(partners: partners(count: 3))

        let report = await harness.kernel.process(request(1))
        #expect(report.plan.edgeCookie?.value == ec(1))
        #expect(report.plan.calls.isEmpty)
        #expect(harness.transport.records.isEmpty)
        #expect(harness.graph.allRecords.isEmpty)
        #expect(try await harness.rateCount("p0", 1) == 0)
        let explained = await harness.kernel.explain(request(1))
        #expect(explained.decisions.map(\.decision) == Array(repeating: .skip(.unknownEC), count: 3))
    }

    @Test("An EC issued on this request is known: it gets a root entry and partners are called")
    func issuedOnThisRequest() async throws {
        let harness = try Harness(partners: partners(count: 2))
        harness.transport.script(TestPartners.host("p0"), .uid("u-0"))

        let report = await harness.kernel.process(request(1, issued: true))

        #expect(report.plan.decisions.map(\.decision) == [.dispatch, .dispatch])
        #expect(harness.transport.records.count == 2)
        let record = try #require(try await harness.record(1))
        #expect(record.ecID == ec(1))
        #expect(record.ecHash == hash(1))
        #expect(record.createdAt == harness.clock.now())
        #expect(record.partners == ["p0.example": PartnerUID(uid: "u-0", syncedAt: harness.clock.now())])
    }

    @Test("Issuing an EC that already has a root keeps the existing record")
    func issuedButAlreadyKnown() async throws {
        let harness = try Harness(partners: partners(["a", "b"]))
        let now = harness.clock.now()
        try await harness.seed(1, uids: ["a": uid("kept", age: .seconds(60), now: now)])
        harness.clock.advance(by: .seconds(10))

        let report = await harness.kernel.process(request(1, issued: true))

        #expect(report.plan.decision(for: "a") == .skip(.fresh))
        #expect(report.plan.decision(for: "b") == .dispatch)
        #expect(try await harness.record(1)?.createdAt == now)
        #expect(try await harness.storedUID(1, "a")?.uid == "kept")
    }

    @Test("The host denying consent calls no partner")
    func hostConsentDenied() async throws {
        let harness = try Harness(partners: partners(count: 3))
        try await harness.seed(1)

        #expect(harness.kernel.gate(request(1, consent: .denied)) == .skip(.consent))
        let report = await harness.kernel.process(request(1, issued: true, consent: .denied))
        #expect(report.results.isEmpty)
        #expect(harness.transport.records.isEmpty)
        let explained = await harness.kernel.explain(request(1, consent: .denied))
        #expect(explained.decisions.map(\.decision) == Array(repeating: .skip(.consent), count: 3))
    }

    @Test("A partner's own consent denying it skips only that partner")
    func partnerConsentDenied() async throws {
        let harness = try Harness(
            partners: [
                TestPartners.partner("open"),
                TestPartners.partner("vendor42", consent: PartnerConsentRequirements(tcfVendorID: 42)),
                TestPartners.partner("vendor7", consent: PartnerConsentRequirements(tcfVendorID: 7)),
            ]
        )
        try await harness.seed(1)
        let consent = ConsentDecision(granted: true, partnerPolicy: DenyVendor(vendorID: 42))

        let report = await harness.kernel.process(request(1, consent: consent))

        #expect(report.plan.decision(for: "open") == .dispatch)
        #expect(report.plan.decision(for: "vendor42") == .skip(.consent))
        #expect(report.plan.decision(for: "vendor7") == .dispatch)
        #expect(harness.calls("vendor42") == 0)
        #expect(harness.calls("open") == 1)
        #expect(harness.calls("vendor7") == 1)
        #expect(harness.decisions("vendor42", "consent") == 1)
    }

    @Test("An EC whose consent was withdrawn is skipped for consent, even when issued again")
    func withdrawnEC() async throws {
        let harness = try Harness(partners: partners(count: 2))
        try await harness.seed(1)
        #expect(try await harness.graph.withdraw(ecHash: hash(1), at: harness.clock.now()))

        let report = await harness.kernel.process(request(1, issued: true))

        #expect(report.results.isEmpty)
        #expect(harness.transport.records.isEmpty)
        let explained = await harness.kernel.explain(request(1))
        #expect(explained.decisions.map(\.decision) == [.skip(.consent), .skip(.consent)])
    }

    @Test("Disabled partners are never called and explain shows them as disabled")
    func disabledPartners() async throws {
        var broken = TestPartners.partner("broken")
        broken.disabledReason = "secret env:TOKEN_BROKEN is not set"
        let harness = try Harness(
            partners: [TestPartners.partner("on"), TestPartners.partner("off", pullEnabled: false), broken]
        )
        try await harness.seed(1)

        let report = await harness.kernel.process(request(1))
        #expect(report.plan.calls.map(\.partnerID) == ["on"])
        #expect(report.plan.decision(for: "off") == nil)
        #expect(harness.calls("off") == 0)
        #expect(harness.calls("broken") == 0)
        #expect(harness.calls("on") == 1)

        harness.clock.advance(by: .seconds(1))
        let explained = await harness.kernel.explain(request(1))
        #expect(explained.decision(for: "on") == .dispatch)
        #expect(explained.decision(for: "off") == .skip(.disabled))
        #expect(explained.decision(for: "broken") == .skip(.disabled))
        #expect(harness.kernel.registry.enabledIndices == [0])

        // Even a request-level skip reports disabled partners as disabled.
        let unknown = await harness.kernel.explain(request(2))
        #expect(unknown.decisions.map(\.decision) == [.skip(.unknownEC), .skip(.disabled), .skip(.disabled)])
    }
}
