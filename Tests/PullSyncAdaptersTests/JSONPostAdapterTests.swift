import PartnerAdapterKit
import PullSync
import PullSyncAdapters
import PullSyncConsent
import PullSyncStorage
import PullSyncTesting
import Testing

@Suite struct JSONPostAdapterTests {
    static let now = Timestamp(secondsSinceEpoch: 1_767_225_600)
    static let edgeCookie = TestPartners.edgeCookie(7)

    static func adapter(_ values: [String: AdapterParameterValue] = [:]) throws -> JSONPostAdapter {
        try JSONPostAdapter(
            configuration: CompiledAdapterConfiguration(
                url: PartnerURL(scheme: "https", host: "api.orbit.example", path: "/v1/match"),
                parameters: AdapterParameters(
                    values.merging(["account_id": .text("pub-42")]) { a, _ in a },
                    for: .jsonPost
                )
            )
        )
    }

    static func context() -> PullContext {
        PullContext(
            edgeCookie: DefaultEdgeCookieFormat().parse(edgeCookie)!,
            partnerID: "orbit",
            sourceDomain: "orbit.example",
            now: now
        )
    }

    /// What a 200 answer whose expiry is `expiry` (raw JSON) classifies as.
    @Test(arguments: [
        ("1767229200", "unix_seconds", PullOutcome.uid("u", expiresAt: Timestamp(secondsSinceEpoch: 1_767_229_200))),
        (
            "1767225600.5", "unix_seconds",
            .uid("u", expiresAt: Timestamp(nanosecondsSinceEpoch: 1_767_225_600_500_000_000))
        ),
        ("1767225600", "unix_seconds", .invalidBody),  // not in the future
        ("3600", "seconds_from_now", .uid("u", expiresAt: Timestamp(secondsSinceEpoch: 1_767_229_200))),
        ("0", "seconds_from_now", .invalidBody),
        ("-5", "seconds_from_now", .invalidBody),
        ("1e300", "seconds_from_now", .uid("u", expiresAt: Timestamp(secondsSinceEpoch: 1_767_225_600 + 30 * 86_400))),
        ("-1e300", "unix_seconds", .invalidBody),
        ("1767225599", "unix_seconds", .invalidBody),
        (
            "99999999999", "unix_seconds",
            .uid("u", expiresAt: Timestamp(secondsSinceEpoch: 1_767_225_600 + 30 * 86_400))
        ),
        ("true", "unix_seconds", .invalidBody),
        ("null", "unix_seconds", .uid("u")),
    ])
    func expiry(_ expiry: String, format: String, outcome: PullOutcome) throws {
        let adapter = try Self.adapter(["expiry_format": .text(format)])
        let body = #"{"data":{"uid":"u","expires_at":\#(expiry)}}"#
        let result = adapter.classify(
            .response(status: 200, headers: [], body: Array(body.utf8)),
            context: Self.context()
        )
        #expect(result == outcome)
    }

    /// The partner-given expiry overrides the partner's TTL in the kernel: a UID learned with a
    /// two-day expiry is still fresh after the one-hour TTL, and due once the expiry passes.
    @Test func aPartnerGivenExpiryOverridesTheTTLInTheKernel() async throws {
        let adapter = try Self.adapter()
        let partner = Partner(
            id: "orbit",
            sourceDomain: "orbit.example",
            policy: PartnerPolicy(
                allowedHosts: AllowedHosts(["api.orbit.example"]),
                ttl: .seconds(3600)
            ),
            adapter: adapter
        )
        let expiry = Self.now.secondsSinceEpoch + 2 * 86_400
        let transport = ScriptedTransport(fallback: .ok(#"{"data":{"uid":"orb-1","expires_at":\#(expiry)}}"#))
        let clock = TestWallClock(start: Self.now)
        let graph = InMemoryIdentityGraph()
        let kernel = PullKernel(
            registry: try PartnerRegistry([partner]),
            graph: graph,
            rateLimiter: InMemoryRateLimiter(),
            transport: transport,
            consent: IABConsentRules(),
            clock: clock
        )
        let request = OrganicRequest(
            path: "/",
            edgeCookie: Self.edgeCookie,
            ecIssuedOnThisRequest: true,
            consent: .granted
        )
        let first = await kernel.process(request)
        #expect(first.results.map(\.outcome) == [.uid("orb-1", expiresAt: Timestamp(secondsSinceEpoch: expiry))])
        let hash = String(Self.edgeCookie.prefix(64))
        let stored = try #require(try await graph.record(ecHash: hash)?.partners["orbit.example"])
        #expect(stored.expiresAt == Timestamp(secondsSinceEpoch: expiry))

        clock.advance(by: .seconds(2 * 3600))  // past the TTL, before the expiry
        let second = await kernel.process(request)
        #expect(second.plan.decision(for: "orbit") == .skip(.fresh))

        clock.advance(by: .seconds(2 * 86_400))  // past the expiry
        let third = await kernel.process(request)
        #expect(third.plan.decision(for: "orbit") == .dispatch)
        #expect(transport.records.count == 2)
    }

    @Test func theBodyIsJSONWithSortedKeysAndTheConsentStringsPresent() throws {
        var context = Self.context()
        context.consentStrings = ConsentStrings(tcf: "CP/x+y", gppSectionIDs: [2])
        let request = try Self.adapter().makeRequest(for: context)
        #expect(request.method == "POST")
        #expect(request.query.isEmpty)
        let body = String(decoding: try #require(request.body), as: UTF8.self)
        #expect(
            body
                == #"{"account_id":"pub-42","consent":{"gdpr":"CP/x+y","gpp_sid":[2]},"ec_id":"\#(Self.edgeCookie)","ts":1767225600}"#
        )
    }
}
