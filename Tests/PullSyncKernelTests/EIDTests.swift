import Foundation
import PullSyncKernel
import PullSyncStorage
import PullSyncTesting
import Testing

/// Issue 20: the consented OpenRTB 2.6 EIDs for an EC, in one call. The EIDs are read back with
/// `JSONSerialization` (not the encoder's own decoder) and checked against OpenRTB 2.6's field
/// definitions.
@Suite("EIDs for the auction")
struct EIDTests {
    /// The partners of ``ConsentRuleTests``, each with a UID stored for EC 1 a minute ago.
    static func seeded(
        _ partners: [Partner]? = nil,
        configuration: PullSyncConfiguration = PullSyncConfiguration()
    ) async throws -> (Harness, LookupCountingGraph) {
        let graph = LookupCountingGraph(base: InMemoryIdentityGraph())
        let partners = try partners ?? ConsentRuleTests().makeHarness().kernel.registry.partners
        let harness = try Harness(partners: partners, configuration: configuration, graph: graph)
        let now = harness.clock.now()
        _ = try await graph.createRoot(for: EdgeCookie(unchecked: ec(1)), at: now)
        for partner in partners {
            graph.base.set(uid("uid-\(partner.id)", age: .seconds(60), now: now), sourceDomain: partner.sourceDomain, ecHash: hash(1))
        }
        return (harness, graph)
    }

    static let ec1 = EdgeCookie(unchecked: ec(1))

    @Test("Each consent rule includes exactly the partners a pull decision would call", arguments: ConsentRuleTests.cases)
    func consentRules(example: ConsentRuleTests.Case) async throws {
        let (harness, _) = try await Self.seeded()

        let eids = try #require(try await harness.kernel.eids(for: Self.ec1, strings: example.strings))

        let expected = zip(ConsentRuleTests.partnerIDs, example.expected).filter { $0.1 == .dispatch }.map(\.0)
        let objects = try OpenRTB.eids(from: JSONEncoder().encode(eids))
        #expect(objects.map(\.source) == expected.map { "\($0).example" }.sorted())
        #expect(objects.map(\.uids) == expected.sorted().map { [OpenRTB.UID(id: "uid-\($0)", atype: 3)] })
    }

    @Test("The host's per-partner policy and a withdrawal refuse as they do for calls; an unknown EC is nil")
    func hostPolicyWithdrawalUnknown() async throws {
        let (harness, graph) = try await Self.seeded()
        let policed = ConsentDecision(granted: true, partnerPolicy: DenyVendor(vendorID: 2))
        let allowed = try await harness.kernel.eids(for: Self.ec1, consent: policed)
        #expect(allowed?.map(\.source) == ["plain.example", "v3.example"])

        // The host's denial refuses every partner: nothing is read.
        let before = graph.lookups
        #expect(try await harness.kernel.eids(for: Self.ec1, consent: .denied) == [])
        #expect(try await harness.kernel.eids(for: Self.ec1, strings: ConsentStrings(globalPrivacyControl: true)) == [])
        #expect(graph.lookups == before)
        #expect(harness.counter("pullsync_eids_total", [("source", "consent")]) == 2)

        #expect(try await harness.kernel.eids(for: EdgeCookie(unchecked: ec(2))) == nil)
        #expect(try await harness.kernel.withdraw(Self.ec1))
        #expect(try await harness.kernel.eids(for: Self.ec1) == [])
    }

    @Test("The manifest's mapping and the inserter shape the objects; one object per source and match method")
    func mapping() async throws {
        let partners = partners(["a", "b", "c", "d"]) { partner in
            switch partner.id {
            case "a": partner.eid = EIDMapping(source: "ID5-Sync.com.", agentType: 1, matchMethod: 3)
            case "b": partner.eid = EIDMapping(source: "id5-sync.com", agentType: 1, matchMethod: 3)
            case "c": partner.eid = EIDMapping(source: "id5-sync.com", agentType: 2)
            default: break
            }
        }
        let (harness, _) = try await Self.seeded(
            partners,
            configuration: PullSyncConfiguration(eidInserter: "publisher.example")
        )

        let eids = try #require(try await harness.kernel.eids(for: Self.ec1))

        // Compact JSON, keys sorted: what the origin header carries.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        #expect(
            String(decoding: try encoder.encode(eids), as: UTF8.self)
                == #"[{"inserter":"publisher.example","source":"d.example","uids":[{"atype":3,"id":"uid-d"}]},"#
                + #"{"inserter":"publisher.example","source":"id5-sync.com","uids":[{"atype":2,"id":"uid-c"}]},"#
                + #"{"inserter":"publisher.example","mm":3,"source":"id5-sync.com","uids":[{"atype":1,"id":"uid-a"},{"atype":1,"id":"uid-b"}]}]"#
        )
        let objects = try OpenRTB.eids(from: encoder.encode(eids))
        #expect(objects.map(\.mm) == [nil, nil, 3])
        #expect(objects.allSatisfy { $0.inserter == "publisher.example" })
    }

    @Test("Only UIDs within the retention age and their partner's expiry; a stale one is still offered; disabled partners none")
    func ages() async throws {
        let partners = partners(["fresh", "stale", "old", "expired", "off"]) { partner in
            if partner.id == "off" { partner.pullEnabled = false }
        }
        let graph = LookupCountingGraph(base: InMemoryIdentityGraph())
        let harness = try Harness(
            partners: partners,
            configuration: PullSyncConfiguration(maxUIDAge: .seconds(30 * 86_400)),
            graph: graph
        )
        let now = harness.clock.now()
        _ = try await graph.createRoot(for: Self.ec1, at: now)
        let day = Duration.seconds(86_400)
        let uids: [String: PartnerUID] = [
            "fresh": uid("u1", age: .seconds(60), now: now),
            "stale": uid("u2", age: day * 29, now: now),  // past the 1-day TTL: due for a refresh
            "old": uid("u3", age: day * 30 + .seconds(1), now: now),
            "expired": uid("u4", age: .seconds(60), now: now, expiresAt: now),
            "off": uid("u5", age: .seconds(60), now: now),
        ]
        for (id, value) in uids { graph.base.set(value, sourceDomain: "\(id).example", ecHash: hash(1)) }

        let eids = try #require(try await harness.kernel.eids(for: Self.ec1))
        #expect(eids.map(\.source) == ["fresh.example", "stale.example"])
    }

    @Test("A returning browser's EIDs come from the fresh-EC memo: no store read, the same answer")
    func fromTheMemo() async throws {
        let (harness, graph) = try await Self.seeded()
        let tcf = ConsentStrings(tcf: ConsentRuleTests.tcfVendors268)
        // The first page of a node that serves EIDs: one read; the memo keeps UIDs from now on.
        let first = try await harness.kernel.eids(for: Self.ec1, strings: tcf)
        #expect(first?.map(\.source) == ["skip7.example", "v2.example"])
        #expect(graph.lookups == 1)
        // The page's pull decision: every partner fresh or refused by the TC string.
        let report = await harness.kernel.process(request(1, consentStrings: tcf))
        #expect(report.plan.calls.isEmpty)
        #expect(graph.lookups == 2)

        for _ in 0..<3 { #expect(try await harness.kernel.eids(for: Self.ec1, strings: tcf) == first) }
        #expect(graph.lookups == 2, "no store read for a memo hit")
        #expect(harness.counter("pullsync_eids_total", [("source", "memo")]) == 3)
        #expect(harness.counter("pullsync_eids_total", [("source", "store")]) == 1)
        #expect(harness.counter("pullsync_store_round_trips_total", [("operation", "lookup")]) == 2)

        // Other signals are another answer: read again. (The TC string's page revoked v3 and
        // plain, which it refuses: their UIDs are gone.)
        let all = try await harness.kernel.eids(for: Self.ec1)
        #expect(all?.map(\.source) == ["skip7.example", "v2.example"])
        #expect(graph.lookups == 3)
        // Past the retention age the memo's UIDs are not offered either (the memo itself lasts an hour
        // at most, so move the age, not the clock).
        let strict = try await Self.seeded(configuration: PullSyncConfiguration(maxUIDAge: .seconds(30))).0
        _ = try await strict.kernel.eids(for: Self.ec1, strings: tcf)
        _ = await strict.kernel.process(request(1, consentStrings: tcf))
        #expect(try await strict.kernel.eids(for: Self.ec1, strings: tcf) == [])
        #expect(strict.counter("pullsync_eids_total", [("source", "memo")]) == 1)
    }

    @Test("A memo entry made before anyone asked for EIDs keeps no UIDs: they are read once, then kept")
    func memoWithoutUIDs() async throws {
        let (harness, graph) = try await Self.seeded()
        _ = await harness.kernel.process(request(1))
        #expect(harness.kernel.gate(request(1)) == .skip(.freshMemo))
        let lookups = graph.lookups
        let eids = try await harness.kernel.eids(for: Self.ec1)
        #expect(eids?.count == 4)
        #expect(graph.lookups == lookups + 1)
        #expect(try await harness.kernel.eids(for: Self.ec1) == eids)
        #expect(graph.lookups == lookups + 1)
        // Under other signals the entry doesn't hold: nothing is kept for them.
        let tcf = ConsentStrings(tcf: ConsentRuleTests.tcfVendors268)
        _ = try await harness.kernel.eids(for: Self.ec1, strings: tcf)
        _ = try await harness.kernel.eids(for: Self.ec1, strings: tcf)
        #expect(graph.lookups == lookups + 3)
    }
}
