import PullSyncKernel
import PullSyncTesting
import Testing

/// Spec "Behaviour" 2: a partner is called only when its UID is missing or older than its TTL
/// (default 86,400 s); a partner-given `expiresAt` overrides the TTL.
@Suite("Freshness")
struct FreshnessTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        /// How old the stored UID is.
        var age: Duration
        /// `expiresAt` relative to now, if the UID has one.
        var expiresIn: Duration?
        var ttl: Duration = .seconds(86_400)
        var expected: Decision
        var testDescription: String { name }
    }

    @Test(
        "Stored UIDs are fresh until their TTL or expiry",
        arguments: [
            Case(name: "just learned", age: .zero, expected: .skip(.fresh)),
            Case(name: "younger than the default TTL", age: .seconds(86_399), expected: .skip(.fresh)),
            Case(
                name: "one nanosecond short of the TTL",
                age: .seconds(86_400) - .nanoseconds(1),
                expected: .skip(.fresh)
            ),
            Case(name: "exactly the TTL old is not older, so fresh", age: .seconds(86_400), expected: .skip(.fresh)),
            Case(name: "older than the default TTL", age: .seconds(86_401), expected: .dispatch),
            Case(name: "custom TTL, younger", age: .seconds(599), ttl: .seconds(600), expected: .skip(.fresh)),
            Case(name: "custom TTL, older", age: .seconds(601), ttl: .seconds(600), expected: .dispatch),
            Case(
                name: "expiresAt ahead keeps an old UID fresh",
                age: .seconds(200_000),
                expiresIn: .seconds(1),
                expected: .skip(.fresh)
            ),
            Case(
                name: "expiresAt passed makes a young UID stale",
                age: .seconds(10),
                expiresIn: .seconds(-1),
                expected: .dispatch
            ),
            Case(name: "exactly at expiresAt is stale", age: .seconds(10), expiresIn: .zero, expected: .dispatch),
        ]
    )
    func freshness(_ scenario: Case) async throws {
        let harness = try Harness(partners: partners(["a"]) { $0.policy.ttl = scenario.ttl })
        let now = harness.clock.now()
        let stored = uid("old", age: scenario.age, now: now, expiresAt: scenario.expiresIn.map { now + $0 })
        try await harness.seed(1, uids: ["a": stored])
        harness.transport.script(TestPartners.host("a"), .uid("new"))

        let report = await harness.kernel.process(request(1))

        #expect(report.plan.decision(for: "a") == scenario.expected)
        if scenario.expected == .dispatch {
            #expect(harness.calls("a") == 1)
            #expect(try await harness.storedUID(1, "a") == PartnerUID(uid: "new", syncedAt: now))
        } else {
            #expect(harness.calls("a") == 0)
            #expect(try await harness.storedUID(1, "a") == stored)
            #expect(harness.decisions("a", "fresh") == 1)
        }
    }

    @Test("A UID learned now is fresh on the next request and stale after the TTL")
    func learnedUIDAges() async throws {
        let harness = try Harness(partners: partners(["a"]) { $0.policy.ttl = .seconds(3600) })
        harness.transport.script(TestPartners.host("a"), .uid("u1"))

        _ = await harness.kernel.process(request(1, issued: true))
        harness.clock.advance(by: .seconds(3599))
        let early = await harness.kernel.process(request(1))
        // Fresh: the memo the call left skips the request; a full decision finds it so too.
        #expect(early.plan.requestSkip == .freshMemo)
        #expect(await harness.kernel.explain(request(1)).decision(for: "a") == .skip(.fresh))
        harness.clock.advance(by: .seconds(2))  // now older than the TTL
        harness.transport.script(TestPartners.host("a"), .uid("u2"))
        let late = await harness.kernel.process(request(1))

        #expect(late.plan.decision(for: "a") == .dispatch)
        #expect(harness.calls("a") == 2)
        #expect(try await harness.storedUID(1, "a") == PartnerUID(uid: "u2", syncedAt: harness.clock.now()))
    }

    @Test("PartnerUID.isFresh compares age with the TTL unless expiresAt is given")
    func isFresh() {
        let learned = Timestamp(secondsSinceEpoch: 1_000)
        let plain = PartnerUID(uid: "x", syncedAt: learned)
        #expect(plain.isFresh(at: learned + .seconds(59), ttl: .seconds(60)))
        #expect(plain.isFresh(at: learned + .seconds(60), ttl: .seconds(60)))
        #expect(!plain.isFresh(at: learned + .seconds(60) + .nanoseconds(1), ttl: .seconds(60)))
        let expiring = PartnerUID(uid: "x", syncedAt: learned, expiresAt: learned + .seconds(5))
        #expect(expiring.isFresh(at: learned + .seconds(4), ttl: .seconds(1)))
        #expect(!expiring.isFresh(at: learned + .seconds(5), ttl: .seconds(3600)))
    }
}
