import PullSyncKernel
import PullSyncStorage
import PullSyncTesting
import Synchronization
import Testing

/// Issue 17: a returning browser whose partners can't be called until a known time is skipped at
/// the gate (`fresh_memo`): no queueing, no store read. The memo only ever skips.
@Suite("Fresh-EC memo")
struct FreshMemoTests {
    /// Two partners, both with fresh UIDs for EC 1: one learned an hour ago (TTL a day), one with
    /// an expiry in 10 minutes.
    static func returningBrowser(
        configuration: PullSyncConfiguration = PullSyncConfiguration()
    ) async throws -> (Harness, LookupCountingGraph) {
        let graph = LookupCountingGraph(base: InMemoryIdentityGraph())
        let harness = try Harness(partners: partners(["a", "b"]), configuration: configuration, graph: graph)
        let now = harness.clock.now()
        _ = try await graph.createRoot(for: EdgeCookie(unchecked: ec(1)), at: now)
        graph.base.set(uid("ua", age: .seconds(3600), now: now), sourceDomain: "a.example", ecHash: hash(1))
        graph.base.set(
            uid("ub", age: .seconds(60), now: now, expiresAt: now + .seconds(600)),
            sourceDomain: "b.example",
            ecHash: hash(1)
        )
        return (harness, graph)
    }

    @Test("After a decision with every UID fresh, the EC's next page views skip at the gate with no store read")
    func skipsAtTheGate() async throws {
        let (harness, graph) = try await Self.returningBrowser()
        let first = await harness.kernel.process(request(1))
        #expect(first.plan.decisions.map(\.decision) == [.skip(.fresh), .skip(.fresh)])
        let lookups = graph.lookups

        let dispatcher = PullDispatcher(kernel: harness.kernel)
        for _ in 0..<3 { #expect(dispatcher.submit(request(1)) == .skipped(.freshMemo)) }
        #expect(harness.kernel.gate(request(1)) == .skip(.freshMemo))
        #expect(graph.lookups == lookups, "no store read for a memo hit")
        #expect(dispatcher.statistics.enqueued == 0)
        #expect(harness.counter("pullsync_request_skips_total", [("reason", "fresh_memo")]) == 3)
        // `explain` says so, beside the full decision.
        let explained = await harness.kernel.explain(request(1))
        #expect(explained.freshMemoHolds)
        #expect(explained.decisions.map(\.decision) == [.skip(.fresh), .skip(.fresh)])
        #expect(await harness.kernel.explain(request(2)).freshMemoHolds == false)
        // Another EC is not affected.
        #expect(harness.kernel.gate(request(2)) == .pass(EdgeCookie(unchecked: ec(2))))
    }

    @Test("It ends at the earliest expiry of the UIDs it relied on")
    func endsAtTheEarliestExpiry() async throws {
        let (harness, _) = try await Self.returningBrowser()
        _ = await harness.kernel.process(request(1))
        harness.clock.advance(by: .seconds(599))
        #expect(harness.kernel.gate(request(1)) == .skip(.freshMemo))
        harness.clock.advance(by: .seconds(1))
        // b's UID has expired: the request is decided again, and b is called.
        #expect(harness.kernel.gate(request(1)) == .pass(EdgeCookie(unchecked: ec(1))))
        let report = await harness.kernel.process(request(1))
        #expect(report.plan.decision(for: "a") == .skip(.fresh))
        #expect(report.plan.decision(for: "b") == .dispatch)
    }

    @Test("Other consent signals, a withdrawal or a reload end it")
    func invalidation() async throws {
        let (harness, _) = try await Self.returningBrowser()
        _ = await harness.kernel.process(request(1))
        #expect(harness.kernel.gate(request(1)) == .skip(.freshMemo))

        // Other signals are decided on their own (here: a US opt-out, which the gate refuses).
        let optOut = request(1, consentStrings: ConsentStrings(usPrivacy: "1YYN"))
        #expect(harness.kernel.gate(optOut) == .skip(.usOptOut))
        #expect(harness.kernel.gate(request(1, consent: .denied)) == .skip(.consent))
        #expect(harness.kernel.gate(request(1)) == .skip(.freshMemo), "the original signals still hit")

        // A reload: a new kernel, a new memo.
        let reloaded = harness.kernel.reloaded(with: harness.kernel.registry)
        #expect(reloaded.gate(request(1)) == .pass(EdgeCookie(unchecked: ec(1))))

        // A withdrawal.
        #expect(try await harness.kernel.withdraw(EdgeCookie(unchecked: ec(1))))
        #expect(await harness.kernel.explain(request(1)).freshMemoHolds == false)
        #expect(await harness.kernel.explain(request(1)).requestSkip == .consent)
    }

    @Test("Calls that all store a UID leave it holding at once, until the earliest expiry, with their UIDs for EIDs")
    func afterCalls() async throws {
        // a's UID is fresh (learned an hour ago, TTL a day); b has none and answers with one that
        // expires in 10 minutes.
        let graph = LookupCountingGraph(base: InMemoryIdentityGraph())
        let start = Timestamp(secondsSinceEpoch: 1_767_225_600)
        let b = Partner(
            id: "b",
            sourceDomain: "b.example",
            policy: PartnerPolicy(allowedHosts: AllowedHosts(["ids.b.example"])),
            adapter: FixedOutcomeAdapter(host: "ids.b.example", outcome: .uid("ub", expiresAt: start + .seconds(600)))
        )
        let harness = try Harness(partners: partners(["a"]) + [b], graph: graph)
        let now = harness.clock.now()
        #expect(now == start)
        _ = try await graph.createRoot(for: EdgeCookie(unchecked: ec(1)), at: now)
        graph.base.set(uid("ua", age: .seconds(3600), now: now), sourceDomain: "a.example", ecHash: hash(1))
        // A node that serves EIDs keeps UIDs with its entries.
        _ = try await harness.kernel.eids(for: EdgeCookie(unchecked: ec(1)))

        let first = await harness.kernel.process(request(1))
        #expect(first.plan.decisions.map(\.decision) == [.skip(.fresh), .dispatch])
        #expect(first.results.map(\.write) == [.stored])
        let lookups = graph.lookups
        #expect(harness.kernel.gate(request(1)) == .skip(.freshMemo), "no second decision needed")
        let eids = try await harness.kernel.eids(for: EdgeCookie(unchecked: ec(1)))
        #expect(eids?.map(\.source) == ["a.example", "b.example"])
        #expect(eids?.map { $0.uids.first?.id } == ["ua", "ub"])
        #expect(graph.lookups == lookups, "the EIDs came from the memo")

        harness.clock.advance(by: .seconds(599))
        #expect(harness.kernel.gate(request(1)) == .skip(.freshMemo))
        harness.clock.advance(by: .seconds(1))
        #expect(harness.kernel.gate(request(1)) == .pass(EdgeCookie(unchecked: ec(1))), "b's UID has expired")
    }

    @Test("Calls that don't all store a UID, or a cap that leaves a partner for later, leave nothing")
    func notAfterIncompleteCalls() async throws {
        // b answers with no UID: the EC still has a partner to call.
        let harness = try Harness(partners: partners(["a", "b"]))
        try await harness.seed(1)
        harness.transport.script(TestPartners.host("a"), .uid("ua"))
        harness.transport.script(TestPartners.host("b"), .status(204))
        let report = await harness.kernel.process(request(1))
        #expect(report.plan.calls.count == 2)
        #expect(harness.kernel.gate(request(1)) == .pass(EdgeCookie(unchecked: ec(1))))

        // One call per request: the other partner is deferred, so there is more to call.
        let capped = try Harness(partners: partners(["a", "b"]), configuration: PullSyncConfiguration(maxCallsPerRequest: 1))
        try await capped.seed(1)
        capped.transport.script(TestPartners.host("a"), .uid("ua"))
        capped.transport.script(TestPartners.host("b"), .uid("ub"))
        let first = await capped.kernel.process(request(1))
        #expect(first.results.map(\.write) == [.stored])
        #expect(capped.kernel.gate(request(1)) == .pass(EdgeCookie(unchecked: ec(1))))
        // The second request calls the other one: now every partner is fresh.
        _ = await capped.kernel.process(request(1))
        #expect(capped.kernel.gate(request(1)) == .skip(.freshMemo))
    }

    @Test("A decision with a partner to call, rate-limited or refused by the host's policy is not remembered")
    func notRemembered() async throws {
        // A partner with no UID: it is called; nothing to remember.
        let harness = try Harness(partners: partners(["a"]))
        try await harness.seed(1)
        _ = await harness.kernel.process(request(1))
        #expect(harness.kernel.gate(request(1)) == .pass(EdgeCookie(unchecked: ec(1))))

        // A partner with no UID and its limit used up: rate limits reset, so no memo.
        let limited = try Harness(partners: partners(["a"]) { $0.policy.rateLimit = RateLimitPolicy(calls: 1) })
        try await limited.seed(1)
        _ = await limited.kernel.process(request(1))
        #expect(await limited.kernel.process(request(1)).plan.decision(for: "a") == .skip(.rateLimited))
        #expect(limited.kernel.gate(request(1)) == .pass(EdgeCookie(unchecked: ec(1))))

        // The host's per-partner policy is code: its requests are never remembered.
        let (withPolicy, _) = try await Self.returningBrowser()
        let policed = request(1, consent: ConsentDecision(granted: true, partnerPolicy: DenyVendor(vendorID: 9)))
        _ = await withPolicy.kernel.process(policed)
        #expect(withPolicy.kernel.gate(policed) == .pass(EdgeCookie(unchecked: ec(1))))
    }

    @Test("Partners refused by the request's own TC string don't stop the memo; it holds for that string")
    func consentRefusals() async throws {
        // TCF applies (vendors 2, 6 and 8, purposes 1-3) and b has no vendor ID: b is refused by
        // the string, a (vendor 2) is fresh.
        let graph = LookupCountingGraph(base: InMemoryIdentityGraph())
        let harness = try Harness(
            partners: partners(["a", "b"]) { partner in
                if partner.id == "a" { partner.policy.consent = PartnerConsentRequirements(tcfVendorID: 2) }
            },
            graph: graph
        )
        let now = harness.clock.now()
        _ = try await graph.createRoot(for: EdgeCookie(unchecked: ec(1)), at: now)
        graph.base.set(uid("ua", age: .seconds(60), now: now), sourceDomain: "a.example", ecHash: hash(1))
        let tcf = request(1, consentStrings: ConsentStrings(tcf: ConsentRuleTests.tcfVendors268))
        let first = await harness.kernel.process(tcf)
        #expect(first.plan.decision(for: "a") == .skip(.fresh))
        #expect(first.plan.decision(for: "b") == .skip(.tcfConsent))
        #expect(harness.kernel.gate(tcf) == .skip(.freshMemo))
        // Without the string, b may be called: not the memo's signals.
        #expect(harness.kernel.gate(request(1)) == .pass(EdgeCookie(unchecked: ec(1))))
    }

    @Test("Bounded: past its capacity the oldest EC is forgotten; capacity 0 turns it off")
    func bounded() async throws {
        let harness = try Harness(partners: partners(["a"]), configuration: PullSyncConfiguration(freshMemoCapacity: 2))
        let now = harness.clock.now()
        for n in 1...3 { try await harness.seed(n, uids: ["a": uid("u\(n)", age: .zero, now: now)]) }
        for n in 1...3 { _ = await harness.kernel.process(request(n)) }
        #expect(harness.kernel.gate(request(1)) == .pass(EdgeCookie(unchecked: ec(1))), "the oldest was replaced")
        #expect(harness.kernel.gate(request(2)) == .skip(.freshMemo))
        #expect(harness.kernel.gate(request(3)) == .skip(.freshMemo))

        let off = try Harness(partners: partners(["a"]), configuration: PullSyncConfiguration(freshMemoCapacity: 0))
        try await off.seed(1, uids: ["a": uid("u", age: .zero, now: off.clock.now())])
        _ = await off.kernel.process(request(1))
        #expect(off.kernel.gate(request(1)) == .pass(EdgeCookie(unchecked: ec(1))))
    }
}

/// An identity graph that counts record lookups.
final class LookupCountingGraph: IdentityGraph {
    let base: InMemoryIdentityGraph
    private let counted = Atomic<Int>(0)

    init(base: InMemoryIdentityGraph) { self.base = base }

    var lookups: Int { counted.load(ordering: .relaxed) }

    func record(ecHash: String) async throws -> ECRecord? {
        counted.add(1, ordering: .relaxed)
        return try await base.record(ecHash: ecHash)
    }
    func createRoot(for edgeCookie: EdgeCookie, at now: Timestamp, consent: ConsentSnapshot?) async throws -> ECRecord {
        try await base.createRoot(for: edgeCookie, at: now, consent: consent)
    }
    func write(_ writes: [UIDWrite], ecHash: String) async throws -> [WriteResult] {
        try await base.write(writes, ecHash: ecHash)
    }
    func withdraw(ecHash: String, at now: Timestamp, notifying: [String]) async throws -> Bool {
        try await base.withdraw(ecHash: ecHash, at: now, notifying: notifying)
    }
    func revoke(_ sourceDomains: [String], ecHash: String, at now: Timestamp, notifying: [String]) async throws -> [String] {
        try await base.revoke(sourceDomains, ecHash: ecHash, at: now, notifying: notifying)
    }
    func markSeen(ecHash: String, at now: Timestamp, consent: ConsentSnapshot?) async throws {
        try await base.markSeen(ecHash: ecHash, at: now, consent: consent)
    }
}
